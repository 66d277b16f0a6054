using System.Diagnostics;
using System.Text;

namespace Survey6.Deploy.Tests.Support;

/// <summary>A long-running command (a server, a daemon) whose output is collected; killed with its children on dispose.</summary>
internal sealed class BackgroundProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private BackgroundProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything printed so far, stdout and stderr interleaved by line.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    public static BackgroundProcess Start(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(Tool.Locate(program))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        start.Environment["LC_ALL"] = "C";
        var process = new BackgroundProcess(Process.Start(start) ?? throw new InvalidOperationException("cannot start " + program));
        process._process.StandardInput.Close();
        process._process.OutputDataReceived += (_, e) => process.Append(e.Data);
        process._process.ErrorDataReceived += (_, e) => process.Append(e.Data);
        process._process.BeginOutputReadLine();
        process._process.BeginErrorReadLine();
        return process;
    }

    /// <summary>The rest of the first line starting with <paramref name="prefix"/>, waiting up to <paramref name="timeout"/> for it.</summary>
    public async Task<string> LineAsync(string prefix, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var line = Output.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
            if (line is not null)
                return line[prefix.Length..];
            if (_process.HasExited)
                Assert.Fail($"{_process.StartInfo.FileName} exited {_process.ExitCode} before printing '{prefix}':\n{Output}");
            Assert.True(deadline.Elapsed < timeout, $"{_process.StartInfo.FileName} did not print '{prefix}' within {timeout}:\n{Output}");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
            // never started or already reaped
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }
}

using System.Diagnostics;
using System.Text;

namespace Survey6.Ingest.Tests;

/// <summary>This test assembly run as a separate process (see <see cref="Program"/>).</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    private ChildProcess(Process process)
    {
        _process = process;
    }

    public static ChildProcess Start(string command, string consumer, IEnumerable<string> settings)
    {
        var start = new ProcessStartInfo(Tool.Dotnet())
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        start.ArgumentList.Add(command);
        start.ArgumentList.Add(consumer);
        foreach (var s in settings)
        {
            start.ArgumentList.Add(s);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the child process");
        var child = new ChildProcess(process);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (child._stderr)
                {
                    child._stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        return child;
    }

    public async Task<string> ReadLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        string? line;
        try
        {
            line = await _process.StandardOutput.ReadLineAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"child process said nothing within {timeout}. stderr:\n{Stderr}");
        }
        return line ?? throw new InvalidOperationException($"child process closed its output. stderr:\n{Stderr}");
    }

    public async Task<List<string>> ReadToEndAsync(TimeSpan timeout)
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync(timeout);
            lines.Add(line);
            if (line == "DONE")
            {
                return lines;
            }
        }
    }

    public Task WriteLineAsync(string line) => _process.StandardInput.WriteLineAsync(line);

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the consumer gets no chance to ack, nack or clean up.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        _process.WaitForExit();
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}

using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Survey6.Testbed;

/// <summary>
/// A <c>survey6</c> command run as a process of its own (optionally inside a network namespace), with its output
/// kept for look-ups and failure messages. Stopped by its PID only: SIGTERM first, SIGKILL if it does not go.
/// </summary>
public sealed partial class ChildProcess : IDisposable
{
    private const int SigTerm = 15;
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Action<string>? _echo;

    private ChildProcess(string name, Process process, Action<string>? echo)
    {
        Name = name;
        _process = process;
        _echo = echo;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>
    /// Starts <c>survey6 ARGS</c>; in <paramref name="networkNamespace"/> through <c>ip netns exec</c>, which execs the
    /// command, so the PID is survey6's own. <paramref name="echo"/> sees every line of output.
    /// </summary>
    public static ChildProcess Start(string name, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null,
        string? networkNamespace = null, Action<string>? echo = null, string? standardInput = null, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var (program, leading) = Survey6Program();
        var command = new List<string>();
        if (networkNamespace is not null)
        {
            command.AddRange(["netns", "exec", networkNamespace, program]);
            program = "ip";
        }

        command.AddRange(leading);
        command.AddRange(arguments);
        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in command)
            start.ArgumentList.Add(a);
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
                start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + program);
        var child = new ChildProcess(name, process, echo);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }

        return child;
    }

    /// <summary>Runs a short command to its end; fails with its output when it exits non-zero.</summary>
    public static async Task<string> RunAsync(string name, IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null,
        string? networkNamespace = null, string? standardInput = null)
    {
        using var child = Start(name, arguments, environment, networkNamespace, standardInput: standardInput);
        if (!await child.WaitForExitAsync(timeout).ConfigureAwait(false))
            throw new TimeoutException($"{name} did not finish within {timeout}:\n{child.Output}");
        if (child.ExitCode != 0)
            throw new InvalidOperationException($"{name} exited {child.ExitCode}:\n{child.Output}");
        return child.Output;
    }

    /// <summary>The first line starting with <paramref name="prefix"/>, without it; waits for it up to <paramref name="timeout"/>.</summary>
    public async Task<string> WaitForLineAsync(string prefix, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (Line(prefix) is { } line)
                return line;
            if (_process.HasExited || deadline.Elapsed > timeout)
            {
                // The process may have printed its last lines just now.
                await Task.Delay(100).ConfigureAwait(false);
                return Line(prefix) ?? throw new InvalidOperationException($"{Name} did not print '{prefix}' ({(_process.HasExited ? "exited " + _process.ExitCode : "timed out")}):\n{Output}");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    public string? Line(string prefix) =>
        Output.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>SIGTERM, as a service manager stops it; SIGKILL after <paramref name="grace"/>. True if it went on SIGTERM.</summary>
    public async Task<bool> StopAsync(TimeSpan grace)
    {
        if (_process.HasExited)
            return true;
        _ = Kill(_process.Id, SigTerm);
        if (await WaitForExitAsync(grace).ConfigureAwait(false))
            return true;
        KillNow();
        return false;
    }

    /// <summary>SIGKILL: no shutdown, no flush.</summary>
    public void KillNow()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill();
            _process.WaitForExit();
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        KillNow();
        _process.Dispose();
    }

    /// <summary>How to start survey6 from here: this program's own executable, or the muxer and survey6.dll beside this assembly.</summary>
    public static (string Program, string[] Arguments) Survey6Program()
    {
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileName(self) == "survey6")
            return (self, []);
        return (DotnetHost.Path, [Path.Combine(AppContext.BaseDirectory, "survey6.dll")]);
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
        _echo?.Invoke(line);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

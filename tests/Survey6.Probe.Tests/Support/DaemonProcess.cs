using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Survey6.Cli;
using Survey6.Probe.Daemon;

namespace Survey6.Probe.Tests.Support;

/// <summary>
/// <c>survey6 probe run</c> as a separate process (the test output holds survey6.dll), so that it can be
/// killed with SIGKILL or stopped with SIGTERM like a service.
/// </summary>
internal sealed class DaemonProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private DaemonProcess(Process process, string stateDirectory)
    {
        _process = process;
        StateDirectory = stateDirectory;
    }

    public string StateDirectory { get; }

    public int ProcessId => _process.Id;

    public string Log
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }

    /// <summary>Writes the configuration file and starts the daemon; returns once its socket answers.</summary>
    public static async Task<DaemonProcess> StartAsync(string configFile, string stateDirectory)
    {
        var start = new ProcessStartInfo(Tool.Dotnet())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "survey6.dll"), "probe", "run", "--config", configFile, "--state-dir", stateDirectory })
            start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start survey6");
        var daemon = new DaemonProcess(process, stateDirectory);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ProbeHarness.WaitUntilAsync(() => process.HasExited || daemon.TryStatus() is not null, TimeSpan.FromSeconds(120), "the daemon's control socket");
            if (process.HasExited)
                Assert.Fail($"survey6 probe run exited {process.ExitCode}:\n{daemon.Log}");
        }
        catch
        {
            daemon.Dispose();
            throw;
        }

        return daemon;
    }

    /// <summary>A configuration file for capture on <paramref name="captureInterface"/>.</summary>
    public static string WriteConfig(string directory, string captureInterface, params (string Path, JsonNode Value)[] extra)
    {
        var capture = new JsonObject
        {
            ["Interfaces"] = new JsonArray(captureInterface),
            ["StatisticsInterval"] = "00:00:00.200",
        };
        var spool = new JsonObject { ["GuardInterval"] = "00:00:00.100" };
        var root = new JsonObject
        {
            ["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Information" } },
            ["Probe"] = new JsonObject
            {
                ["Id"] = "p-test",
                ["Labels"] = new JsonObject { ["site"] = "lab", ["role"] = "test" },
                ["Location"] = "52.52,13.405,DE,Berlin",
                ["Capture"] = capture,
                ["Spool"] = spool,
            },
        };
        foreach (var (path, value) in extra)
        {
            var parts = path.Split(':');
            JsonObject node = root;
            foreach (var part in parts[..^1])
                node = (JsonObject)(node[part] ??= new JsonObject());
            node[parts[^1]] = value;
        }

        var file = Path.Combine(directory, "probe.json");
        File.WriteAllText(file, root.ToJsonString());
        return file;
    }

    /// <summary>The daemon's status through its socket, or null while it does not answer.</summary>
    public ProbeStatus? TryStatus()
    {
        try
        {
            return ProbeDaemonClient.SendAsync(Path.Combine(StateDirectory, "probe.sock"), "status", null, TimeSpan.FromSeconds(5), CancellationToken.None)
                .GetAwaiter().GetResult()?.Status;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public ProbeStatus Status() => TryStatus() ?? throw new InvalidOperationException("the daemon does not answer:\n" + Log);

    /// <summary>SIGKILL: no finally block, no flush, no close.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, as systemctl stop sends it; waits for a clean exit.</summary>
    public void Terminate()
    {
        if (_process.HasExited)
            return;
        Tool.Run("kill", "-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)).Check();
        Assert.True(_process.WaitForExit(TimeSpan.FromSeconds(30)), "the daemon did not stop on SIGTERM:\n" + Log);
        _process.WaitForExit();
        Assert.True(_process.ExitCode == 0, $"the daemon exited {_process.ExitCode}:\n{Log}");
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>Runs a <c>survey6</c> command line in this process; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> CliAsync(params string[] arguments)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exitCode = await RootCommandFactory.Create().Parse(arguments).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (exitCode, output.ToString(), error.ToString());
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_log)
            _log.AppendLine(line);
    }
}

using System.Diagnostics;
using System.Globalization;

namespace Survey6.LoadGen;

/// <summary>A `survey6 server run` this tool started: gRPC on 127.0.0.1:0, no HTTP listener, join rate limit lifted.</summary>
internal sealed class ServerUnderTest : IDisposable
{
    private readonly Process _process;
    private readonly Lock _lock = new();
    private readonly List<string> _lines = [];

    private ServerUnderTest(Process process, string survey6, string dataDirectory)
    {
        _process = process;
        Survey6 = survey6;
        DataDirectory = dataDirectory;
    }

    public string Survey6 { get; }
    public string DataDirectory { get; }
    public Uri GrpcUrl { get; private set; } = null!;
    public string Pin { get; private set; } = "";
    public int ProcessId => _process.Id;

    public static async Task<ServerUnderTest> StartAsync(string survey6, string dataDirectory, int probes)
    {
        var start = new ProcessStartInfo(survey6)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[] { "server", "run", "--data-dir", dataDirectory, "--grpc-listen", "127.0.0.1:0", "--http-listen", "" })
            start.ArgumentList.Add(argument);
        // Every probe joins from 127.0.0.1; the default limit (10 a minute per source) is for the internet.
        start.Environment["Server__JoinRateLimit__PermitLimit"] = Math.Min(1_000_000, probes * 2 + 10).ToString(CultureInfo.InvariantCulture);
        start.Environment["Logging__LogLevel__Default"] = "Warning";

        var server = new ServerUnderTest(Process.Start(start) ?? throw new InvalidOperationException("could not start survey6 server run"), survey6, dataDirectory);
        server._process.OutputDataReceived += (_, e) => server.Append(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddMinutes(3); // the launcher may build first
        while (server.Line("ca-hash: ") is null)
        {
            if (server._process.HasExited || DateTime.UtcNow > deadline)
            {
                var output = server.Output;
                server.Dispose();
                throw new InvalidOperationException("the server did not start:\n" + output);
            }

            await Task.Delay(50);
        }

        server.GrpcUrl = new Uri(server.Line("grpc: ")!);
        server.Pin = server.Line("ca-hash: ")!;
        return server;
    }

    /// <summary>`survey6 server token create --uses N` on the same data directory; returns the token.</summary>
    public async Task<string> CreateTokenAsync(int uses)
    {
        var start = new ProcessStartInfo(Survey6) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[]
                 {
                     "server", "token", "create", "--data-dir", DataDirectory, "--uses", uses.ToString(CultureInfo.InvariantCulture),
                     "--ttl", "6h", "--description", "heartbeat load",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not run survey6 server token create");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var output = await stdout;
        if (process.ExitCode != 0)
            throw new InvalidOperationException("survey6 server token create failed:\n" + output + await stderr);
        return output.Split('\n').First(l => l.StartsWith("token: ", StringComparison.Ordinal))["token: ".Length..].Trim();
    }

    /// <summary>Resident memory (MiB) and CPU seconds (user + system) of the server process, from /proc.</summary>
    public (double RssMiB, double CpuSeconds) Usage() => ProcessUsage.Read(_process.Id);

    public string Output
    {
        get
        {
            lock (_lock)
                return string.Join('\n', _lines);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_lock)
        {
            if (_lines.Count < 10_000)
                _lines.Add(line);
        }
    }

    private string? Line(string prefix)
    {
        lock (_lock)
            return _lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..].Trim();
    }
}

internal static class ProcessUsage
{
    private static readonly double ClockTicks = 100.0; // USER_HZ on Linux

    public static (double RssMiB, double CpuSeconds) Read(int pid)
    {
        try
        {
            var rssKb = File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
                .Select(l => double.Parse(l["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture)).FirstOrDefault();
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // After "pid (comm) ", field 0 is state; utime and stime are fields 11 and 12.
            var cpu = (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / ClockTicks;
            return (rssKb / 1024, cpu);
        }
        catch (IOException)
        {
            return (0, 0);
        }
    }
}

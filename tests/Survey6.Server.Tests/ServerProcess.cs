using System.Diagnostics;
using System.Text;

namespace Survey6.Server.Tests;

/// <summary><c>survey6 server run</c> as a separate process, as an operator starts it, so a test can SIGKILL it.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(Process process)
    {
        _process = process;
    }

    public Uri GrpcUrl { get; private set; } = null!;

    /// <summary>The operator endpoint, when started with one.</summary>
    public Uri? HttpUrl { get; private set; }

    public string Pin { get; private set; } = "";

    public int Id => _process.Id;

    /// <summary>What the server printed so far (stdout and stderr), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>
    /// Starts the server on <paramref name="dataDirectory"/> and waits until it prints where it listens. Without
    /// <paramref name="aggregator"/> it runs with <c>--no-aggregator</c>, so the ingest queue keeps what it was given.
    /// Without <paramref name="httpListen"/> (<c>ADDR:PORT</c>) there is no operator endpoint.
    /// </summary>
    /// <param name="umask">The file mode mask to start it under (octal, as the shell's <c>umask</c> takes it); null: the test's own.</param>
    public static async Task<ServerProcess> StartAsync(string dataDirectory, int port, bool aggregator = false, IReadOnlyDictionary<string, string>? environment = null,
        string? umask = null, string httpListen = "")
    {
        var start = new ProcessStartInfo(umask is null ? Tool.Dotnet() : "/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (umask is not null)
        {
            // The shell sets the mask and execs the server, as a login shell would before an operator types the command.
            foreach (var argument in new[] { "-c", $"umask {umask} && exec \"$0\" \"$@\"", Tool.Dotnet() })
                start.ArgumentList.Add(argument);
        }
        foreach (var argument in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "survey6.dll"), "server", "run", "--data-dir", dataDirectory,
                     "--grpc-listen", $"127.0.0.1:{port}", "--http-listen", httpListen,
                 })
        {
            start.ArgumentList.Add(argument);
        }
        if (!aggregator)
            start.ArgumentList.Add("--no-aggregator");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;

        var server = new ServerProcess(Process.Start(start) ?? throw new InvalidOperationException("could not start survey6 server run"));
        server._process.OutputDataReceived += (_, e) => server.Append(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(90); // generous: a busy CI machine starts a .NET host slowly
        while (server.Line("ca-hash: ") is null)
        {
            if (server._process.HasExited || DateTime.UtcNow > deadline)
            {
                server.Dispose();
                throw new InvalidOperationException("the server did not start:\n" + server.Output);
            }

            await Task.Delay(20);
        }

        server.GrpcUrl = new Uri(server.Line("grpc: ")!);
        server.HttpUrl = server.Line("http: ") is { } http && http != "none" ? new Uri(http) : null;
        server.Pin = server.Line("ca-hash: ")!;
        return server;
    }

    /// <summary>
    /// Runs <c>survey6 ARGS</c> as its own process (what an operator's shell does), with
    /// <paramref name="standardInput"/> on its standard input; returns its exit code and output.
    /// </summary>
    public static async Task<(int Status, string Output)> RunCliAsync(string? standardInput, params string[] arguments)
    {
        var start = new ProcessStartInfo(Tool.Dotnet())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "survey6.dll"));
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start survey6");
        if (standardInput is not null)
            await process.StandardInput.WriteAsync(standardInput);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"survey6 {string.Join(' ', arguments)} did not finish within 2 minutes");
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>SIGKILL: no shutdown, no flush, no cleanup of any kind.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.WaitForExit();
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    private string? Line(string prefix) =>
        Output.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Survey6.Cli;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// The mistakes operators make, run through the real <c>survey6</c> program as a separate process: each gets one line
/// on stderr that says what is wrong, no stack trace, and the exit status docs/operations.md documents. New commands
/// join the table. Permission cases run as <c>nobody</c> (the tests run as root, as CI does).
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class CliMistakeTests : IDisposable
{
    private const string Nobody = "nobody";
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromMinutes(2);

    private readonly string _root = TempDirectory.Create();

    public CliMistakeTests()
    {
        Tool.RequireRoot();
        // nobody must reach the fixtures (and be refused by their own modes, not by this directory's).
        for (var dir = _root; dir != Path.GetTempPath().TrimEnd('/') && dir.Length > 1; dir = Path.GetDirectoryName(dir)!)
            File.SetUnixFileMode(dir, (UnixFileMode)0x1ED); // 0755
    }

    public void Dispose() => TempDirectory.Delete(_root);

    /// <param name="Name">What the operator did.</param>
    /// <param name="Args">The command line after <c>survey6</c>.</param>
    /// <param name="Status">The documented exit status.</param>
    /// <param name="Says">Text the line must contain (the path, the option, the address).</param>
    /// <param name="AsNobody">Run as an unprivileged user.</param>
    /// <param name="Stdin">Standard input, when the command reads it.</param>
    /// <param name="WorkingDirectory">Where it runs, for defaults relative to it (./data).</param>
    private sealed record Case(string Name, string[] Args, int Status, string Says, bool AsNobody = false, string? Stdin = null, string? WorkingDirectory = null);

    private sealed record Outcome(Case Case, int Status, string Stdout, string Stderr);

    [Fact]
    public async Task Every_mistake_gets_one_clear_line_no_trace_and_its_documented_exit_status()
    {
        // Fixtures: a server data directory (root's, 0700), one others may enter (state.db 0644), files and directories
        // in the wrong places, bad and unreadable configuration.
        var data = Path.Combine(_root, "data");
        var created = await RunAsync(new Case("setup", ["server", "token", "create", "--data-dir", data], 0, ""));
        Assert.True(created.Status == 0, created.Stderr);
        var open = Path.Combine(_root, "open");
        await RunAsync(new Case("setup", ["server", "token", "create", "--data-dir", open], 0, ""));
        File.SetUnixFileMode(open, (UnixFileMode)0x1ED);
        File.SetUnixFileMode(Path.Combine(open, "state.db"), (UnixFileMode)0x1A4); // 0644: readable, not writable by nobody
        var file = Path.Combine(_root, "a-file");
        await File.WriteAllTextAsync(file, "not a directory\n");
        File.SetUnixFileMode(file, (UnixFileMode)0x1A4);
        var directory = Directory.CreateDirectory(Path.Combine(_root, "a-directory")).FullName;
        var badJson = Path.Combine(_root, "bad.json");
        await File.WriteAllTextAsync(badJson, "{ \"Server\": { \"DataDirectory\": ");
        File.SetUnixFileMode(badJson, (UnixFileMode)0x1A4);
        // Hand-edited, with the mistake on line 3: the line tells the operator where to look.
        var badJsonLine3 = Path.Combine(_root, "bad-line3.json");
        await File.WriteAllTextAsync(badJsonLine3, "{\n  \"Aggregator\": {\n    \"LockWait\": 00:05\n  }\n}\n");
        File.SetUnixFileMode(badJsonLine3, (UnixFileMode)0x1A4);
        var aggregatorConfig = Path.Combine(_root, "aggregator.json");
        await File.WriteAllTextAsync(aggregatorConfig, $"{{ \"Aggregator\": {{ \"DataDirectory\": \"{Path.Combine(_root, "missing-agg-config")}\" }} }}");
        File.SetUnixFileMode(aggregatorConfig, (UnixFileMode)0x1A4);
        var unreadable = Path.Combine(_root, "unreadable.json");
        await File.WriteAllTextAsync(unreadable, "{}");
        File.SetUnixFileMode(unreadable, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var nope = Path.Combine(_root, "nope.json");
        var empty = Directory.CreateDirectory(Path.Combine(_root, "empty-cwd")).FullName;
        File.SetUnixFileMode(empty, (UnixFileMode)0x1ED);
        string Missing(string name) => Path.Combine(_root, "missing-" + name);
        using var inUse = new TcpListener(IPAddress.Loopback, 0);
        inUse.Start();
        var busyPort = ((IPEndPoint)inUse.LocalEndpoint).Port;
        // A plain HTTP port, as the web UI's is: it answers whatever arrives with an HTTP/1.1 error.
        using var web = new TcpListener(IPAddress.Loopback, 0);
        web.Start();
        var webPort = ((IPEndPoint)web.LocalEndpoint).Port;
        using var stopWeb = new CancellationTokenSource();
        var serving = ServePlainHttpAsync(web, stopWeb.Token);

        Case[] table =
        [
            new("an unknown command", ["frobnicate"], ExitCodes.Usage, "no command 'frobnicate'"),
            new("a group without its command", ["server"], ExitCodes.Usage, "which command?"),
            new("an unknown option", ["server", "probes", "--data-dri", data], ExitCodes.Usage, "--data-dri"),
            new("a required option left out", ["probe", "join", "--token", "a.b"], ExitCodes.Usage, "--server"),
            new("--uses 0", ["server", "token", "create", "--data-dir", data, "--uses", "0"], ExitCodes.Usage, "--uses"),
            new("--ttl not a duration", ["server", "token", "create", "--data-dir", data, "--ttl", "soon"], ExitCodes.Usage, "--ttl 'soon'"),
            new("--config missing", ["server", "token", "list", "--config", nope], ExitCodes.NotFound, nope),
            new("--config a directory", ["server", "token", "list", "--config", directory], ExitCodes.Usage, directory + " is a directory"),
            new("--config bad JSON", ["server", "token", "list", "--config", badJson], ExitCodes.Usage, badJson),
            new("--config unreadable", ["server", "token", "list", "--config", unreadable], ExitCodes.Permission, unreadable, AsNobody: true),
            new("server run --config bad JSON", ["server", "run", "--config", badJson, "--data-dir", Missing("run-json")], ExitCodes.Usage, $"configuration file {badJson} is not valid JSON at line 1"),
            new("probe run --config bad JSON", ["probe", "run", "--config", badJsonLine3, "--state-dir", Missing("probe-json")], ExitCodes.Usage, $"configuration file {badJsonLine3} is not valid JSON at line 3"),
            new("aggregate once --config missing", ["aggregate", "once", "--config", nope], ExitCodes.NotFound, nope),
            new("aggregate once --config bad JSON", ["aggregate", "once", "--config", badJsonLine3], ExitCodes.Usage, $"configuration file {badJsonLine3} is not valid JSON at line 3"),
            new("aggregate status --config a directory", ["aggregate", "status", "--config", directory], ExitCodes.Usage, directory + " is a directory"),
            new("aggregate status --config naming a missing data folder", ["aggregate", "status", "--config", aggregatorConfig], ExitCodes.NotFound, Missing("agg-config")),
            new("query --config bad JSON", ["query", "SELECT 1", "--config", badJsonLine3, "--data-dir", data], ExitCodes.Usage, $"configuration file {badJsonLine3} is not valid JSON at line 3"),
            new("probe status --config missing", ["probe", "status", "--config", nope], ExitCodes.NotFound, nope),
            new("probe suspend --config missing", ["probe", "suspend", "--config", nope], ExitCodes.NotFound, nope),
            new("probe status on a missing directory", ["probe", "status", "--state-dir", Missing("state")], ExitCodes.NotFound, Missing("state")),
            new("probe leave on a missing directory", ["probe", "leave", "--state-dir", Missing("leave")], ExitCodes.NotFound, Missing("leave")),
            new("aggregate once --data-dir a file", ["aggregate", "once", "--data-dir", file], ExitCodes.Usage, file + " is a file"),
            new("aggregate status --data-dir a file", ["aggregate", "status", "--data-dir", file], ExitCodes.Usage, file + " is a file"),
            new("token create --data-dir a file", ["server", "token", "create", "--data-dir", file], ExitCodes.Usage, file + " is a file"),
            new("token create under a file", ["server", "token", "create", "--data-dir", Path.Combine(file, "data")], ExitCodes.Usage, file),
            new("probe run --state-dir a file", ["probe", "run", "--state-dir", file], ExitCodes.Usage, file + " is a file"),
            new("probe join --state-dir a file", ["probe", "join", "--server", "https://127.0.0.1:1", "--token", "a.b", "--ca-hash", "sha256:00", "--state-dir", file], ExitCodes.Usage, file),
            new("aggregate once on a mistyped directory", ["aggregate", "once", "--data-dir", Missing("agg-once")], ExitCodes.NotFound, Missing("agg-once")),
            new("aggregate status on a mistyped directory", ["aggregate", "status", "--data-dir", Missing("agg-status")], ExitCodes.NotFound, Missing("agg-status")),
            new("aggregate once without ./data", ["aggregate", "once"], ExitCodes.NotFound, Path.Combine(empty, "data"), WorkingDirectory: empty),
            new("api-token create on a mistyped directory", ["server", "api-token", "create", "--data-dir", Missing("api")], ExitCodes.NotFound, Missing("api")),
            new("admin set-password on a mistyped directory", ["server", "admin", "set-password", "--data-dir", Missing("admin")], ExitCodes.NotFound, Missing("admin"), Stdin: "a long password 123\n"),
            new("repo key on a mistyped directory", ["server", "repo", "key", "--data-dir", Missing("repo")], ExitCodes.NotFound, Missing("repo")),
            new("token list on a mistyped directory", ["server", "token", "list", "--data-dir", Missing("list")], ExitCodes.NotFound, Missing("list")),
            new("token list on a directory without state", ["server", "token", "list", "--data-dir", directory], ExitCodes.NotFound, "no server state"),
            new("token revoke of an unknown token", ["server", "token", "revoke", "nosuch", "--data-dir", data], ExitCodes.NotFound, "no token nosuch"),
            new("probe commands of an unknown probe", ["server", "probe", "commands", "p-nosuch", "--data-dir", data], ExitCodes.NotFound, "no probe p-nosuch"),
            new("uploads of an unknown probe", ["server", "uploads", "--probe", "p-nosuch", "--data-dir", data], ExitCodes.NotFound, "no probe p-nosuch"),
            new("suspend an unknown probe", ["server", "probe", "suspend", "p-nosuch", "--data-dir", data], ExitCodes.NotFound, "no probe p-nosuch"),
            new("update-policy --snaplen abc", ["server", "probe", "update-policy", "p-nosuch", "--snaplen", "abc", "--data-dir", data], ExitCodes.Usage, "--snaplen 'abc'"),
            new("uploads --limit 0", ["server", "uploads", "--limit", "0", "--data-dir", data], ExitCodes.Usage, "--limit"),
            new("aggregate status --runs -5", ["aggregate", "status", "--runs", "-5", "--data-dir", data], ExitCodes.Usage, "--runs"),
            new("probe upload --attempts 0", ["probe", "upload", file, "--attempts", "0"], ExitCodes.Usage, "--attempts"),
            new("probe upload --rate not a size", ["probe", "upload", file, "--rate", "fast"], ExitCodes.Usage, "--rate 'fast'"),
            new("probe upload --manifest missing", ["probe", "upload", file, "--manifest", nope], ExitCodes.NotFound, nope),
            new("probe join pointed at the web port", ["probe", "join", "--server", $"https://127.0.0.1:{webPort}", "--token", "a.b", "--ca-hash", "sha256:" + new string('0', 64), "--state-dir", Path.Combine(_root, "join-web")],
                ExitCodes.Failed, "not its web address"),
            new("probe join --server not a URL", ["probe", "join", "--server", "nowhere", "--token", "a.b", "--ca-hash", "sha256:00", "--state-dir", Missing("join")], ExitCodes.Usage, "--server 'nowhere'"),
            new("query with no SQL", ["query", "", "--data-dir", data], ExitCodes.Usage, "the SQL is empty"),
            new("query a dataset with no data", ["query", "SELECT count(*) FROM flows", "--data-dir", data], ExitCodes.NotFound, "flows has no data yet"),
            new("server run on an address this host lacks", ["server", "run", "--data-dir", Missing("run-addr"), "--grpc-listen", "192.0.2.1:7443", "--http-listen", ""], ExitCodes.Unavailable, "192.0.2.1:7443"),
            new("server run on a port in use", ["server", "run", "--data-dir", Missing("run-busy"), "--grpc-listen", $"127.0.0.1:{busyPort}", "--http-listen", ""], ExitCodes.Conflict, $"127.0.0.1:{busyPort}"),
            new("server run --http-listen not an address", ["server", "run", "--data-dir", Missing("run-bad"), "--grpc-listen", "127.0.0.1:0", "--http-listen", "bogus"], ExitCodes.Usage, "bogus"),
            new("server run on a privileged port as a user", ["server", "run", "--data-dir", Missing("run-443"), "--grpc-listen", "127.0.0.1:443", "--http-listen", ""], ExitCodes.Permission, "127.0.0.1:443", AsNobody: true),
            new("probe run without capture rights", ["probe", "run", "--state-dir", Missing("capture")], ExitCodes.Permission, "CAP_NET_RAW", AsNobody: true),
            new("token list as a user who may not enter", ["server", "token", "list", "--data-dir", data], ExitCodes.Permission, data, AsNobody: true),
            new("token create as a user who may not enter", ["server", "token", "create", "--data-dir", data], ExitCodes.Permission, data, AsNobody: true),
            new("aggregate status as a user who may not enter", ["aggregate", "status", "--data-dir", data], ExitCodes.Permission, data, AsNobody: true),
            new("aggregate once as a user who may not enter", ["aggregate", "once", "--data-dir", data], ExitCodes.Permission, data, AsNobody: true),
            new("admin set-password as a user who may not enter", ["server", "admin", "set-password", "--data-dir", data], ExitCodes.Permission, data, AsNobody: true, Stdin: "a long password 123\n"),
            new("token list on a read-only state.db", ["server", "token", "list", "--data-dir", open], ExitCodes.Permission, Path.Combine(open, "state.db"), AsNobody: true),
            new("probes on a read-only state.db", ["server", "probes", "--data-dir", open], ExitCodes.Permission, Path.Combine(open, "state.db"), AsNobody: true),
            new("aggregate status on a directory it may not write", ["aggregate", "status", "--data-dir", open], ExitCodes.Permission, open, AsNobody: true),
        ];

        // Bounded: a busy 2-core machine starts only a few .NET hosts at a time.
        using var gate = new SemaphoreSlim(4);
        var outcomes = await Task.WhenAll(table.Select(async c =>
        {
            await gate.WaitAsync();
            try
            {
                return await RunAsync(c);
            }
            finally
            {
                gate.Release();
            }
        }));

        var wrong = new List<string>();
        foreach (var o in outcomes)
        {
            var lines = o.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var problems = new List<string>();
            if (o.Status != o.Case.Status)
                problems.Add($"exit {o.Status}, documented {o.Case.Status}");
            if (lines.Length != 1)
                problems.Add($"{lines.Length} lines on stderr");
            if (!o.Stderr.Contains(o.Case.Says, StringComparison.Ordinal))
                problems.Add($"does not say '{o.Case.Says}'");
            if ((o.Stdout + o.Stderr).Contains("   at ", StringComparison.Ordinal) || o.Stderr.Contains("Unhandled exception", StringComparison.Ordinal))
                problems.Add("prints a stack trace");
            if (problems.Count > 0)
                wrong.Add($"{o.Case.Name} (survey6 {string.Join(' ', o.Case.Args)}): {string.Join("; ", problems)}\n    stderr: {o.Stderr.Trim()}");
        }

        await stopWeb.CancelAsync();
        await serving;

        // Commands that only read create nothing: the mistyped directories are still missing.
        var createdByMistake = Directory.EnumerateDirectories(_root, "missing-*").Select(Path.GetFileName).ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {table.Length} mistakes not reported as documented:\n" + string.Join('\n', wrong));
        Assert.Empty(createdByMistake);
        Assert.False(Directory.Exists(Path.Combine(empty, "data")));
    }

    [Fact]
    public async Task Join_into_a_state_directory_it_cannot_write_refuses_before_the_token_is_used()
    {
        var data = Path.Combine(_root, "server");
        using var server = await ServerProcess.StartAsync(data, 0);
        var created = await RunAsync(new Case("token", ["server", "token", "create", "--data-dir", data, "--uses", "1"], 0, ""));
        var join = created.Stdout.Split('\n').Single(l => l.StartsWith("survey6 probe join ", StringComparison.Ordinal)).Trim().Split(' ').Skip(1).ToArray();
        var locked = Directory.CreateDirectory(Path.Combine(_root, "root-only")).FullName;
        File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var refused = await RunAsync(new Case("join", [.. join, "--state-dir", Path.Combine(locked, "probe")], ExitCodes.Permission, "", AsNobody: true));

        Assert.True(refused.Status == ExitCodes.Permission, $"exit {refused.Status}, stderr: {refused.Stderr}");
        Assert.Contains(locked, refused.Stderr, StringComparison.Ordinal);
        var tokens = await RunAsync(new Case("list", ["server", "token", "list", "--json", "--data-dir", data], 0, ""));
        var token = JsonDocument.Parse(tokens.Stdout).RootElement.EnumerateArray().Single();
        Assert.Equal(0, token.GetProperty("used").GetInt32());
        Assert.Equal("active", token.GetProperty("status").GetString());
        var probes = await RunAsync(new Case("probes", ["server", "probes", "--json", "--data-dir", data], 0, ""));
        Assert.Empty(JsonDocument.Parse(probes.Stdout).RootElement.EnumerateArray());
    }

    [Fact]
    public async Task A_second_server_on_the_same_data_directory_is_refused_with_the_owners_pid_before_it_touches_anything()
    {
        var data = Path.Combine(_root, "server");
        using var server = await ServerProcess.StartAsync(data, 0);

        foreach (var extra in new[] { new[] { "--no-aggregator" }, Array.Empty<string>() })
        {
            var second = await RunAsync(new Case("second", ["server", "run", "--data-dir", data, "--grpc-listen", "127.0.0.1:0", "--http-listen", "", .. extra], ExitCodes.Conflict, ""));
            Assert.Equal(ExitCodes.Conflict, second.Status);
            Assert.Contains($"PID {server.Id}", second.Stderr, StringComparison.Ordinal);
            Assert.Single(second.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            // Refused before recovery, the PKI or anything else logged a word.
            Assert.Equal("", second.Stdout.Trim());
        }

        // Read with cat: .NET would ask for a shared lock, which the owner's exclusive one refuses.
        Assert.Equal($"{server.Id}", Tool.Run("cat", new Survey6.Data.DataLayout(data).ServerLock).Check().Stdout.Trim());
    }

    /// <summary>
    /// The cases run as nobody start survey6.dll from this test's output folder, which nobody can do only if every
    /// folder above it may be entered by others. A checkout in a private folder (mktemp -d makes 0700) fails here with
    /// that reason rather than with survey6 exiting 1 for want of its own files.
    /// </summary>
    private static void RequireReachableByOthers(string path)
    {
        for (var directory = new DirectoryInfo(path); directory is not null; directory = directory.Parent)
        {
            if (!directory.UnixFileMode.HasFlag(UnixFileMode.OtherExecute))
                throw new InvalidOperationException($"these cases run survey6 as {Nobody}, who cannot enter {directory.FullName} (mode {Convert.ToString((int)directory.UnixFileMode, 8)}): check out the repository where other users may enter");
        }
    }

    private static async Task<Outcome> RunAsync(Case c)
    {
        var start = new ProcessStartInfo(c.AsNobody ? "setpriv" : Tool.Dotnet())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = c.WorkingDirectory ?? Path.GetTempPath(),
        };
        if (c.AsNobody)
        {
            RequireReachableByOthers(AppContext.BaseDirectory);
            foreach (var a in new[] { "--reuid=" + Nobody, "--regid=nogroup", "--clear-groups", "--inh-caps=-all", Tool.Dotnet() })
                start.ArgumentList.Add(a);
        }

        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "survey6.dll"));
        foreach (var a in c.Args)
            start.ArgumentList.Add(a);
        start.Environment["LC_ALL"] = "C";
        start.Environment["DOTNET_CLI_HOME"] = Path.GetTempPath();
        start.Environment.Remove(CliFailure.DebugSetting);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start survey6");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (c.Stdin is not null)
            await process.StandardInput.WriteAsync(c.Stdin);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(CaseTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return new Outcome(c, -1, await stdout, "did not finish within " + CaseTimeout + ": " + await stderr);
        }

        return new Outcome(c, process.ExitCode, await stdout, await stderr);
    }

    private static async Task ServePlainHttpAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync(cancellationToken);
                var stream = client.GetStream();
                await stream.WriteAsync("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), cancellationToken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or IOException)
        {
        }
    }
}

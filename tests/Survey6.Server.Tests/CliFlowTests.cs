using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Survey6.Cli;
using Survey6.Contracts.V1;
using Survey6.Probe.Control;
using Survey6.Server.Api;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>The commands an operator types, run in-process through the real command tree.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class CliFlowTests : IDisposable
{
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Token_create_then_the_printed_join_command_then_server_probes()
    {
        var dataDir = Path.Combine(_root, "server");
        using var stop = new CancellationTokenSource();
        var serverOutput = new LockedWriter();
        var run = Cli(["server", "run", "--data-dir", dataDir, "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"], serverOutput, stop.Token);
        var grpcLine = await serverOutput.WaitForLineAsync("ca-hash: ", run);
        Assert.Matches("^grpc: https://127\\.0\\.0\\.1:[1-9][0-9]*/$", serverOutput.Lines().First(l => l.StartsWith("grpc: ", StringComparison.Ordinal)));

        var (status, created) = await RunAsync("server", "token", "create", "--data-dir", dataDir, "--ttl", "2h", "--uses", "1", "--label", "site=lab", "--description", "first probe");
        Assert.Equal(0, status);
        var join = created.Split('\n').Single(l => l.StartsWith("survey6 probe join ", StringComparison.Ordinal)).Trim();
        var pin = grpcLine["ca-hash: ".Length..];
        Assert.Matches("^survey6 probe join --server https://127\\.0\\.0\\.1:[0-9]+ --token [a-z0-9]{6}\\.[a-z0-9]{16} --ca-hash sha256:[0-9a-f]{64}$", join);
        Assert.EndsWith("--ca-hash " + pin, join, StringComparison.Ordinal);

        var stateDir = Path.Combine(_root, "probe");
        var joinArgs = join.Split(' ').Skip(1).Concat(["--state-dir", stateDir, "--label", "role=edge"]).ToArray();
        var (joinStatus, joined) = await RunAsync(joinArgs);
        Assert.Equal(0, joinStatus);
        var probeId = joined.Split(' ')[2].TrimEnd(';');
        Assert.Matches("^p-[a-z2-7]{12}$", probeId);

        var (probesStatus, probesJson) = await RunAsync("server", "probes", "--json", "--data-dir", dataDir);
        Assert.Equal(0, probesStatus);
        var probe = JsonDocument.Parse(probesJson).RootElement.EnumerateArray().Single();
        Assert.Equal(probeId, probe.GetProperty("id").GetString());
        Assert.Equal("pending", probe.GetProperty("state").GetString());
        Assert.Equal("lab", probe.GetProperty("labels").GetProperty("site").GetString());
        Assert.Equal("edge", probe.GetProperty("labels").GetProperty("role").GetString());

        var (_, table) = await RunAsync("server", "probes", "--data-dir", dataDir);
        Assert.Contains(probeId, table, StringComparison.Ordinal);

        var (_, tokensJson) = await RunAsync("server", "token", "list", "--json", "--data-dir", dataDir);
        var token = JsonDocument.Parse(tokensJson).RootElement.EnumerateArray().Single();
        Assert.Equal("used-up", token.GetProperty("status").GetString());
        Assert.Equal(1, token.GetProperty("used").GetInt32());

        // The same command again: refused, named, non-zero.
        var (againStatus, _, againError) = await RunWithErrorAsync(join.Split(' ').Skip(1).Concat(["--state-dir", Path.Combine(_root, "probe2")]).ToArray());
        Assert.Equal(1, againStatus);
        Assert.Contains("join refused: token used-up", againError, StringComparison.Ordinal);

        var tokenId = token.GetProperty("id").GetString()!;
        Assert.Equal(0, (await RunAsync("server", "token", "revoke", tokenId, "--data-dir", dataDir)).Status);
        Assert.Contains("revoked", (await RunAsync("server", "token", "list", "--data-dir", dataDir)).Output, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, (await RunWithErrorAsync("server", "token", "revoke", "nosuch", "--data-dir", dataDir)).Status);

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    [Fact]
    public async Task Probe_commands_from_the_cli_reach_a_probe_of_a_running_server_within_two_seconds()
    {
        var dataDir = Path.Combine(_root, "server");
        using var stop = new CancellationTokenSource();
        var serverOutput = new LockedWriter();
        var run = Cli(["server", "run", "--data-dir", dataDir, "--grpc-listen", "127.0.0.1:0", "--http-listen", ""], serverOutput, stop.Token);
        await serverOutput.WaitForLineAsync("ca-hash: ", run);
        var (_, created) = await RunAsync("server", "token", "create", "--data-dir", dataDir);
        var join = created.Split('\n').Single(l => l.StartsWith("survey6 probe join ", StringComparison.Ordinal)).Trim();
        var stateDir = Path.Combine(_root, "probe");
        var (_, joined) = await RunAsync(join.Split(' ').Skip(1).Concat(["--state-dir", stateDir]).ToArray());
        var probeId = joined.Split(' ')[2].TrimEnd(';');

        using var channel = new ControlChannel(ControlChannelOptions.FromStateDirectory(stateDir), _ => ValueTask.FromResult(new Heartbeat
        {
            State = ProbeState.Capturing,
            Spool = new SpoolStatus { FreeDiskBytes = 10UL << 30 },
        }));
        using var probeStop = new CancellationTokenSource();
        var probe = channel.RunAsync(probeStop.Token);
        await Eventually(async () => StateOf(await RunAsync("server", "probes", "--json", "--data-dir", dataDir), probeId) == "healthy");

        await using var commands = channel.ReadCommandsAsync().GetAsyncEnumerator();
        var clock = Stopwatch.StartNew();
        var (_, issued) = await RunAsync("server", "probe", "suspend", probeId, "--data-dir", dataDir);
        Assert.True(await commands.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"suspend took {clock.Elapsed} to arrive");
        Assert.Equal(Contracts.V1.CommandKind.Suspend, commands.Current.Kind);
        Assert.StartsWith($"issued suspend {commands.Current.Id} to {probeId}", issued, StringComparison.Ordinal);

        channel.ReportResult(commands.Current.Id, ok: true, "capture stopped");
        await Eventually(async () => (await RunAsync("server", "probe", "commands", probeId, "--json", "--data-dir", dataDir)).Output.Contains("\"ok\"", StringComparison.Ordinal));
        var (_, table) = await RunAsync("server", "probes", "--data-dir", dataDir);
        Assert.Contains("suspended", table, StringComparison.Ordinal);
        Assert.Contains("operator-suspended", table, StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync("server", "probe", "upload-now", probeId, "--data-dir", dataDir)).Status);
        Assert.True(await commands.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(Contracts.V1.CommandKind.UploadNow, commands.Current.Kind);

        // Revoking closes the stream; the probe learns it cannot come back.
        Assert.Equal(0, (await RunAsync("server", "probe", "revoke", probeId, "--data-dir", dataDir)).Status);
        await Assert.ThrowsAsync<ControlChannelRefusedException>(() => probe.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal("revoked", StateOf(await RunAsync("server", "probes", "--json", "--data-dir", dataDir), probeId));
        var (status, _, error) = await RunWithErrorAsync("server", "probe", "resume", probeId, "--data-dir", dataDir);
        Assert.Equal(1, status);
        Assert.Contains($"probe {probeId} is revoked", error, StringComparison.Ordinal);

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    private static string? StateOf((int Status, string Output) probes, string probeId) =>
        JsonDocument.Parse(probes.Output).RootElement.EnumerateArray().Single(p => p.GetProperty("id").GetString() == probeId).GetProperty("state").GetString();

    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition never held");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Probe_join_with_a_wrong_pin_exits_non_zero_with_a_clear_error()
    {
        var dataDir = Path.Combine(_root, "server");
        using var stop = new CancellationTokenSource();
        var serverOutput = new LockedWriter();
        var run = Cli(["server", "run", "--data-dir", dataDir, "--grpc-listen", "127.0.0.1:0", "--http-listen", ""], serverOutput, stop.Token);
        var grpc = (await serverOutput.WaitForLineAsync("grpc: ", run))["grpc: ".Length..].TrimEnd('/');
        var (_, created) = await RunAsync("server", "token", "create", "--data-dir", dataDir);
        var token = created.Split('\n').First(l => l.StartsWith("token: ", StringComparison.Ordinal))["token: ".Length..].Trim();

        var (status, _, error) = await RunWithErrorAsync("probe", "join", "--server", grpc, "--token", token, "--ca-hash", "sha256:" + new string('a', 64), "--state-dir", Path.Combine(_root, "probe"));
        Assert.Equal(1, status);
        Assert.Contains("does not match --ca-hash", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "probe")));

        await stop.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Listing_a_missing_data_directory_fails_without_creating_it()
    {
        var missing = Path.Combine(_root, "typo");
        var (status, _, error) = await RunWithErrorAsync("server", "probes", "--data-dir", missing);
        Assert.Equal(ExitCodes.NotFound, status);
        Assert.StartsWith($"survey6 server probes: --data-dir {missing} does not exist", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(missing));
    }

    [Theory]
    [InlineData("24h", 24 * 3600)]
    [InlineData("90m", 90 * 60)]
    [InlineData("7d", 7 * 86400)]
    [InlineData("1h30m", 5400)]
    [InlineData("45s", 45)]
    public void Durations_read_as_their_seconds(string text, int seconds)
    {
        Assert.True(DurationText.TryParse(text, out var duration));
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("24")]
    [InlineData("h")]
    [InlineData("-1h")]
    [InlineData("0s")]
    public void Bad_durations(string text) => Assert.False(DurationText.TryParse(text, out _));

    [Fact]
    public void Zero_duration_means_no_expiry()
    {
        Assert.True(DurationText.TryParse("0", out var duration));
        Assert.Null(duration);
    }

    [Fact]
    public void A_location_reads_latitude_longitude_country_and_a_city_with_commas()
    {
        Assert.True(CliParsing.TryParseLocation("52.08,4.31,NL,Den Haag, Centrum", out var location));
        Assert.Equal(52.08, location!.Latitude);
        Assert.Equal("Den Haag, Centrum", location.City);
        Assert.True(CliParsing.TryParseLocation("-33.9,151.2", out location));
        Assert.Equal("", location!.Country);
        Assert.False(CliParsing.TryParseLocation("91,0", out _));
        Assert.False(CliParsing.TryParseLocation("north", out _));
    }

    private static Task<int> Cli(string[] args, TextWriter output, CancellationToken cancellationToken, TextWriter? error = null) =>
        RootCommandFactory.Create().Parse(args).InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error ?? output }, cancellationToken);

    private static async Task<(int Status, string Output)> RunAsync(params string[] args)
    {
        var (status, output, error) = await RunWithErrorAsync(args);
        Assert.True(status == 0, $"survey6 {string.Join(' ', args)} exited {status}: {error}");
        return (status, output);
    }

    private static async Task<(int Status, string Output, string Error)> RunWithErrorAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var status = await Cli(args, output, CancellationToken.None, error);
        return (status, output.ToString(), error.ToString());
    }

    /// <summary>Collects a running command's output so the test can wait for a line.</summary>
    private sealed class LockedWriter : TextWriter
    {
        private readonly StringBuilder _text = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_text)
                _text.Append(value);
        }

        public override void Write(string? value)
        {
            lock (_text)
                _text.Append(value);
        }

        public string[] Lines()
        {
            lock (_text)
                return _text.ToString().Split('\n', StringSplitOptions.TrimEntries);
        }

        public async Task<string> WaitForLineAsync(string prefix, Task running)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < deadline)
            {
                if (Lines().FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) is { } line)
                    return line;
                if (running.IsCompleted)
                    throw new InvalidOperationException("server exited: " + string.Join('\n', Lines()));
                await Task.Delay(20);
            }

            throw new TimeoutException("no line starting with " + prefix);
        }
    }
}

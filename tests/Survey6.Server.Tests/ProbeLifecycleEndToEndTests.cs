using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Survey6.Packets.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Xunit.Abstractions;
using Daemon = Survey6.Server.Tests.ProbeUplinkEndToEndTests.Daemon;
using Lab = Survey6.Server.Tests.ProbeUplinkEndToEndTests.Lab;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// A probe's life against a real server: join with a name and place, leave, certificate renewal by the running daemon,
/// and the server going away and coming back while the probe captures.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed partial class ProbeLifecycleEndToEndTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Join_flags_reach_the_server_and_leave_removes_the_identity_but_keeps_the_spool()
    {
        await using var server = await ServerHarness.StartAsync();
        var state = Path.Combine(server.Root, "probe");
        var token = server.CreateToken();
        string[] join = ["probe", "join", "--server", server.GrpcUrl.ToString(), "--token", token, "--ca-hash", server.Pki.Authority.Pin, "--state-dir", state];

        var (exit, _, error) = await CliAsync([.. join, "--country", "XX"]);
        Assert.Equal(Survey6.Cli.ExitCodes.Usage, exit);
        Assert.Contains("--country 'XX' is not an ISO 3166-1 alpha-2 code", error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(state, "probe.json")));
        (exit, _, error) = await CliAsync([.. join, "--location", "52.52,13.405,FR", "--country", "DE"]);
        Assert.Equal(Survey6.Cli.ExitCodes.Usage, exit);
        Assert.Contains("contradicts", error, StringComparison.Ordinal);

        (exit, var text, error) = await CliAsync([.. join, "--name", "Roof probe 1", "--country", "de", "--city", "Berlin", "--label", "site=lab"]);
        Assert.True(exit == 0, error);
        var probeId = new ProbeStateDirectory(state).ReadProbeId()!;
        Assert.Contains("joined as " + probeId, text, StringComparison.Ordinal);

        var facts = JsonNode.Parse(server.Probes.Get(probeId)!.FactsJson)!;
        Assert.Equal("Roof probe 1", facts["name"]!.GetValue<string>());
        Assert.Equal("DE", facts["location"]!["country"]!.GetValue<string>());
        Assert.Equal("Berlin", facts["location"]!["city"]!.GetValue<string>());
        Assert.Null(facts["location"]!["latitude"]); // not given: absent, not 0
        (exit, text, _) = await CliAsync("server", "probes", "--json", "--data-dir", server.DataDirectory);
        Assert.Equal(0, exit);
        var listed = JsonNode.Parse(text)!.AsArray().Single(p => p!["id"]!.GetValue<string>() == probeId)!;
        Assert.Equal("Roof probe 1", listed["name"]!.GetValue<string>());
        Assert.Equal("DE", listed["facts"]!["location"]!["country"]!.GetValue<string>());

        // Two captures that never reached the server: leave keeps them and says so.
        var spool = Path.Combine(state, "spool");
        Directory.CreateDirectory(spool);
        await File.WriteAllBytesAsync(Path.Combine(spool, "20250101T000000Z-000001.pcapng"), new byte[1000]);
        await File.WriteAllBytesAsync(Path.Combine(spool, "20250101T000500Z-000002.pcapng.partial"), new byte[24]);
        (exit, text, error) = await CliAsync("probe", "leave", "--reason", "host retired", "--state-dir", state);
        Assert.True(exit == 0, error);
        Assert.Contains(probeId + " left the server", text, StringComparison.Ordinal);
        Assert.Contains("2 capture file(s) not uploaded remain in " + spool, text, StringComparison.Ordinal);
        foreach (var name in new[] { "probe.json", "key.pem", "cert.pem", "ca.pem" })
            Assert.False(File.Exists(Path.Combine(state, name)), name + " is still there");
        Assert.Equal(2, Directory.GetFiles(spool).Length);

        var record = server.Probes.Get(probeId)!;
        Assert.NotNull(record.LeftAt);
        Assert.Equal("host retired", record.LeaveReason);
        (exit, _, error) = await CliAsync("probe", "leave", "--state-dir", state);
        Assert.Equal(1, exit);
        Assert.Contains("holds no joined probe", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Leave_refuses_while_a_daemon_runs_and_keeps_the_identity_when_the_server_is_away()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root: it creates a network namespace and captures");
        var root = TempDirectory.Create();
        var server = await ServerHarness.StartAsync(root);
        try
        {
            var state = Path.Combine(root, "probe", "state");
            await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null));
            using var lab = new Lab();
            using (var daemon = Daemon.Start(ProbeUplinkEndToEndTests.WriteConfig(Path.Combine(root, "probe"), lab.HostInterface), state))
            {
                await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is not null, TimeSpan.FromSeconds(20), "the daemon", daemon);
                var (exit, _, error) = await CliAsync("probe", "leave", "--state-dir", state);
                Assert.Equal(1, exit);
                Assert.Contains("a probe daemon (PID ", error, StringComparison.Ordinal);
                daemon.Terminate();
            }

            await server.StopKeepingDataAsync();
            var (code, _, message) = await CliAsync("probe", "leave", "--state-dir", state);
            Assert.Equal(1, code);
            Assert.Contains("the identity is kept, try again", message, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(state, "key.pem")));
            Assert.True(new ProbeStateDirectory(state).IsJoined);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_policy_from_the_server_is_checked_by_the_probe_rejected_with_the_reason_or_applied_live()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root: it creates a network namespace and captures");
        await using var server = await ServerHarness.StartAsync(
            new Dictionary<string, string?> { ["Server:InitialPolicy:HeartbeatInterval"] = "00:00:01" },
            services => services.AddSingleton(TimeProvider.System));
        var state = Path.Combine(server.Root, "probe", "state");
        var probeId = (await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null))).ProbeId;
        using var lab = new Lab();
        using var daemon = Daemon.Start(ProbeUplinkEndToEndTests.WriteConfig(Path.Combine(server.Root, "probe"), lab.HostInterface), state);
        try
        {
            var health = server.Get<ProbeHealthQuery>();
            await ProbeUplinkEndToEndTests.WaitUntilAsync(async () => (await health.GetAsync(probeId)) is { State: ProbeStates.Healthy }, TimeSpan.FromSeconds(60), "a healthy probe", daemon);
            var commands = server.Get<ProbeCommands>();

            var bad = commands.UpdatePolicy(probeId, new PolicyChange { CaptureFilter = "ip6 and no such primitive" });
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => commands.Get(bad.Id) is { Ok: not null }, TimeSpan.FromSeconds(15), "the probe's answer", daemon);
            var answer = commands.Get(bad.Id)!;
            Assert.False(answer.Ok);
            Assert.Contains($"policy {bad.Policy!.Version} rejected, policy 1 stays in force: filter 'ip6 and no such primitive' does not compile on '{lab.HostInterface}'", answer.ResultMessage, StringComparison.Ordinal);
            Assert.Equal(ProbeStatus.Capturing, daemon.TryStatus()!.State);

            var good = commands.UpdatePolicy(probeId, new PolicyChange { CaptureFilter = "icmp6", Snaplen = 128, Interfaces = [lab.HostInterface] });
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => commands.Get(good.Id) is { Ok: not null }, TimeSpan.FromSeconds(15), "the probe's answer", daemon);
            Assert.True(commands.Get(good.Id)!.Ok, commands.Get(good.Id)!.ResultMessage);
            await ProbeUplinkEndToEndTests.WaitUntilAsync(async () => (await health.GetAsync(probeId))?.PolicyVersion == good.Policy!.Version, TimeSpan.FromSeconds(10), "heartbeats with the new policy version", daemon);
            var status = daemon.TryStatus()!;
            Assert.Equal(("icmp6", 128, good.Policy!.Version), (status.Policy!.Filter, status.SnapLength, status.Policy.Version));
            // What libpcap applies: the policy's filter without the probe's own traffic with this server.
            var own = Survey6.Probe.Capture.OwnTrafficFilter.Expression([System.Net.IPAddress.Parse(server.GrpcUrl.Host)], server.GrpcUrl.Port);
            Assert.Equal(Survey6.Probe.Capture.OwnTrafficFilter.Compose("icmp6", own), status.Filter);
            Assert.Equal(ProbeStatus.Capturing, status.State);
            daemon.Terminate();
        }
        finally
        {
            output.WriteLine(daemon.Log);
        }
    }

    [Fact]
    public async Task The_daemon_renews_its_certificate_with_a_fresh_key_and_reconnects_with_it_after_the_old_one_expired()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root: it creates a network namespace and captures");
        var clock = Stopwatch.StartNew();
        var root = TempDirectory.Create();
        var settings = new Dictionary<string, string?>
        {
            ["Server:ProbeCertificateLifetime"] = "00:01:00",
            ["Server:ClockSkewAllowance"] = "00:00:00",
            ["Server:InitialPolicy:HeartbeatInterval"] = "00:00:01",
        };
        var server = await ServerHarness.StartAsync(root, settings, services => services.AddSingleton(TimeProvider.System));
        try
        {
            var state = Path.Combine(root, "probe", "state");
            var joined = await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null));
            using var first = X509Certificate2.CreateFromPemFile(Path.Combine(state, "cert.pem"), Path.Combine(state, "key.pem"));
            var firstKey = File.ReadAllText(Path.Combine(state, "key.pem"));
            using var lab = new Lab();
            // A quarter of the lifetime: renewal after about 15 s.
            var config = ProbeUplinkEndToEndTests.WriteConfig(Path.Combine(root, "probe"), lab.HostInterface, new JsonObject
            {
                ["Certificate"] = new JsonObject { ["RenewAfterFraction"] = 0.25, ["RetryInterval"] = "00:00:01" },
            });
            using var daemon = Daemon.Start(config, state);
            try
            {
                var health = server.Get<ProbeHealthQuery>();
                await ProbeUplinkEndToEndTests.WaitUntilAsync(async () => (await health.GetAsync(joined.ProbeId)) is { State: ProbeStates.Healthy }, TimeSpan.FromSeconds(60), "a healthy probe", daemon);
                await ProbeUplinkEndToEndTests.WaitUntilAsync(() => SerialOnDisk(state) != first.SerialNumber, TimeSpan.FromSeconds(40), "a renewed certificate", daemon);

                using var renewed = X509Certificate2.CreateFromPemFile(Path.Combine(state, "cert.pem"), Path.Combine(state, "key.pem"));
                Assert.NotEqual(firstKey, File.ReadAllText(Path.Combine(state, "key.pem")));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(state, "key.pem")));
                Assert.Equal(joined.ProbeId, renewed.GetNameInfo(X509NameType.SimpleName, false));
                Assert.True(renewed.NotAfter > first.NotAfter);
                Assert.Equal(renewed.SerialNumber, server.Probes.Get(joined.ProbeId)!.CertificateSerial);
                await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.Log.Contains("Certificate renewed", StringComparison.Ordinal), TimeSpan.FromSeconds(5), "the renewal logged", daemon);
                Assert.Empty(Directory.GetFiles(state, "*.new"));

                // Wait until the first certificate has expired, then force new connections: restart the server.
                var expired = first.NotAfter.ToUniversalTime() - DateTime.UtcNow + TimeSpan.FromSeconds(2);
                if (expired > TimeSpan.Zero)
                    await Task.Delay(expired);
                var port = server.GrpcUrl.Port;
                await server.StopKeepingDataAsync();
                var restartedAt = DateTimeOffset.UtcNow;
                server = await ServerHarness.StartAsync(root, new Dictionary<string, string?>(settings) { ["Server:GrpcListen"] = $"127.0.0.1:{port}" }, services => services.AddSingleton(TimeProvider.System));
                health = server.Get<ProbeHealthQuery>();
                await ProbeUplinkEndToEndTests.WaitUntilAsync(
                    async () => (await health.GetAsync(joined.ProbeId)) is { State: ProbeStates.Healthy, LastHeartbeatAt: { } at } && at > restartedAt,
                    TimeSpan.FromSeconds(30),
                    "heartbeats over a new connection after the first certificate expired",
                    daemon);
                Assert.True(DateTime.UtcNow > first.NotAfter.ToUniversalTime());
                output.WriteLine($"renewed {first.SerialNumber} -> {renewed.SerialNumber}; done in {clock.Elapsed.TotalSeconds:0.0} s");
                daemon.Terminate();
            }
            finally
            {
                output.WriteLine(daemon.Log);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task While_the_server_is_away_the_probe_spools_and_backs_off_then_every_frame_is_uploaded_exactly_once()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root: it creates a network namespace and captures");
        const int Echoes = 120;
        var clock = Stopwatch.StartNew();
        var root = TempDirectory.Create();
        var settings = new Dictionary<string, string?> { ["Server:InitialPolicy:HeartbeatInterval"] = "00:00:01" };
        var server = await ServerHarness.StartAsync(root, settings, services => services.AddSingleton(TimeProvider.System));
        try
        {
            var state = Path.Combine(root, "probe", "state");
            var probeId = (await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null))).ProbeId;
            using var lab = new Lab();
            using var daemon = Daemon.Start(ProbeUplinkEndToEndTests.WriteConfig(Path.Combine(root, "probe"), lab.HostInterface), state);
            try
            {
                var health = server.Get<ProbeHealthQuery>();
                await ProbeUplinkEndToEndTests.WaitUntilAsync(async () => (await health.GetAsync(probeId)) is { State: ProbeStates.Healthy }, TimeSpan.FromSeconds(60), "a healthy probe", daemon);

                // 120 echoes over 24 s; the server is away from the 3rd second to the 15th.
                using var echoes = lab.PingInBackground(lab.HostAddress, Echoes, 0.2);
                await Task.Delay(TimeSpan.FromSeconds(3));
                var port = server.GrpcUrl.Port;
                await server.StopKeepingDataAsync();
                var awayFrom = daemon.Log.Length;
                var spool = Path.Combine(state, "spool");
                var stoppedAt = Stopwatch.StartNew();
                await ProbeUplinkEndToEndTests.WaitUntilAsync(() => Directory.GetFiles(spool, "*.pcapng").Length >= 3, TimeSpan.FromSeconds(15), "files spooled while the server is away", daemon);
                if (stoppedAt.Elapsed < TimeSpan.FromSeconds(12))
                    await Task.Delay(TimeSpan.FromSeconds(12) - stoppedAt.Elapsed);
                var status = daemon.TryStatus()!;
                Assert.Equal(ProbeStatus.Capturing, status.State); // capture and spooling went on
                Assert.True(status.Upload!.Failures > 0 || status.Spool.Files >= 3);
                var away = daemon.Log[awayFrom..];

                server = await ServerHarness.StartAsync(root, new Dictionary<string, string?>(settings) { ["Server:GrpcListen"] = $"127.0.0.1:{port}" }, services => services.AddSingleton(TimeProvider.System));
                var transmitted = echoes.WaitForExit(TimeSpan.FromSeconds(60));
                Assert.Contains($"{Echoes} packets transmitted, {Echoes} received", transmitted, StringComparison.Ordinal);

                // Heartbeats backed off while the server was away: growing delays, with jitter (not exact powers of two).
                var delays = ReconnectDelay().Matches(away).Select(m => TimeSpan.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
                Assert.True(delays.Count >= 3, "reconnection attempts while away:\n" + away);
                for (var i = 1; i < delays.Count; i++)
                    Assert.True(delays[i] >= delays[i - 1] * 0.99, $"backoff shrank: {string.Join(", ", delays)}");
                Assert.True(delays[^1] >= delays[0] * 2, $"backoff did not grow: {string.Join(", ", delays)}");
                Assert.Contains(delays, d => d.Ticks % (TimeSpan.TicksPerSecond / 2) != 0);

                // The spool drains (files close every 2 s): every echo request reaches the server.
                var captures = Path.Combine(server.DataDirectory, "captures", probeId);
                var files = Array.Empty<string>();
                var sequences = new List<int>();
                await ProbeUplinkEndToEndTests.WaitUntilAsync(
                    () =>
                    {
                        try
                        {
                            files = Directory.Exists(captures) ? Directory.GetFiles(captures, "*.pcapng", SearchOption.AllDirectories) : [];
                            sequences = [.. files.SelectMany(f => EchoRequestSequences(f, IPAddress.Parse(lab.HostAddress)))];
                            return sequences.Distinct().Count() == Echoes && daemon.TryStatus() is { Spool.Files: 0 };
                        }
                        catch (Exception e) when (e is IOException or InvalidDataException)
                        {
                            return false; // a file being stored right now
                        }
                    },
                    TimeSpan.FromSeconds(60),
                    "every echo request on the server and the spool drained",
                    daemon);
                await ProbeUplinkEndToEndTests.WaitUntilAsync(async () => (await server.Get<ProbeHealthQuery>().GetAsync(probeId)) is { State: ProbeStates.Healthy }, TimeSpan.FromSeconds(20), "the probe healthy again", daemon);
                daemon.Terminate();
                sequences = [.. files.SelectMany(f => EchoRequestSequences(f, IPAddress.Parse(lab.HostAddress)))];

                // Exactly once: nothing lost, nothing stored twice.
                var duplicates = sequences.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
                Assert.True(duplicates.Count == 0, "duplicated echo requests: " + string.Join(", ", duplicates));
                Assert.Equal(Enumerable.Range(1, Echoes), sequences.Order());
                output.WriteLine($"{files.Length} files, {sequences.Count} echo requests; backoff {string.Join(", ", delays)}; done in {clock.Elapsed.TotalSeconds:0.0} s");
            }
            finally
            {
                output.WriteLine(daemon.Log);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static string SerialOnDisk(string state)
    {
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(state, "cert.pem"));
            return certificate.SerialNumber;
        }
        catch (Exception e) when (e is IOException or CryptographicException)
        {
            return "";
        }
    }

    /// <summary>ICMPv6 echo request sequence numbers (Ethernet, IPv6 without extension headers) sent to <paramref name="to"/>.</summary>
    private static List<int> EchoRequestSequences(string path, IPAddress to)
    {
        var sequences = new List<int>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryRead(out var frame))
        {
            var data = frame.Data;
            if (frame.LinkType != LinkType.Ethernet || data.Length < 62 || data[12] != 0x86 || data[13] != 0xDD || data[20] != 58 || data[54] != 128)
                continue;
            if (!new IPAddress(data.Slice(38, 16)).Equals(to))
                continue;
            sequences.Add((data[60] << 8) | data[61]);
        }

        if (reader.Error is not null)
            throw new InvalidDataException($"{path}: {reader.Error}");
        return sequences;
    }

    private static async Task<(int ExitCode, string Output, string Error)> CliAsync(params string[] arguments)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await Survey6.Cli.RootCommandFactory.Create().Parse(arguments).InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    [GeneratedRegex(@"reconnecting in (\d\d:\d\d:\d\d(?:\.\d+)?)")]
    private static partial Regex ReconnectDelay();
}

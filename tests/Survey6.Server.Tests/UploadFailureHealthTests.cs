using System.Net;
using System.Text.Json.Nodes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Server.Control;
using Survey6.Server.Metrics;
using Survey6.Server.Storage;
using static Survey6.Server.Tests.ProbeUplinkEndToEndTests;
using Xunit.Abstractions;
using static Survey6.Server.Tests.MetricsTests;
using static Survey6.Server.Tests.UploadTestSupport;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// Uploads that keep failing on the server's side make the server degraded, with the cause and the count, in
/// /healthz, /metrics and <c>survey6 server probes</c>, and the log says so once, not once per attempt.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class UploadFailureHealthTests(ITestOutputHelper output)
{
    private const int Attempts = 6;
    private const int Floor = 1 << 20;

    [Fact]
    public async Task A_read_only_upload_directory_degrades_the_server_with_the_cause_and_count_and_is_logged_once_until_an_upload_is_stored()
    {
        using var disk = new Tmpfs("64m");
        var data = Path.Combine(disk.Path, "data");
        var probeRoot = TempDirectory.Create();
        var incoming = Path.Combine(data, "incoming");
        var mounted = false;
        using var server = await ServerProcess.StartAsync(data, 0, httpListen: "127.0.0.1:0",
            environment: new Dictionary<string, string> { ["Server__Uploads__MinFreeDiskBytes"] = $"{Floor}", ["Server__Uploads__Failures__DegradedAfter"] = "3" });
        try
        {
            using var http = new HttpClient { BaseAddress = server.HttpUrl };
            var token = new TokenStore(StateDatabase.OpenAndMigrate(Path.Combine(data, "state.db")), TimeProvider.System)
                .Create(TimeSpan.FromHours(1), 1, new Dictionary<string, string>(), "upload failure test").Token;
            using var probe = await JoinAsync(server.GrpcUrl, token, server.Pin, Path.Combine(probeRoot, "probe"));
            await RawUploadAsync(probe, WholeUpload(Capture(40, 16 << 10)));
            Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));

            // The directory uploads are written to turns read-only, as a file system does after write errors.
            Directory.CreateDirectory(incoming);
            Tool.Run("mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0700", "tmpfs", incoming).Check();
            mounted = true;
            for (var i = 0; i < Attempts; i++)
            {
                var e = await Assert.ThrowsAsync<RpcException>(() => RawUploadAsync(probe, WholeUpload(Capture(41 + i, 16 << 10))));
                Assert.Equal(StatusCode.Unavailable, e.StatusCode); // the probe keeps its file and retries
            }

            var healthz = await http.GetAsync("/healthz");
            var reason = await healthz.Content.ReadAsStringAsync();
            output.WriteLine(reason);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, healthz.StatusCode);
            Assert.StartsWith($"degraded: {Attempts} uploads in a row failed on the server since ", reason, StringComparison.Ordinal);
            Assert.Contains($"from 1 probe; the last ({probe.ProbeId}): IOException: Read-only file system", reason, StringComparison.Ordinal);
            Assert.Single(reason.TrimEnd('\n').Split('\n')); // the disk has room: one reason

            var metrics = await http.GetStringAsync("/metrics");
            Assert.Equal(1, Sample(metrics, "survey6_server_degraded"));
            Assert.Equal(Attempts, Sample(metrics, "survey6_upload_failures_in_a_row"));
            Assert.Equal(Attempts, Sample(metrics, "survey6_upload_outcomes_total{outcome=\"failed\"}"));

            // server probes, as an operator runs it beside the server, with the server's configuration.
            var config = Path.Combine(probeRoot, "server.json");
            await File.WriteAllTextAsync(config, $"{{\"Server\": {{\"Uploads\": {{\"MinFreeDiskBytes\": {Floor}}}}}}}");
            var probes = Tool.Run(Tool.Dotnet(), Path.Combine(AppContext.BaseDirectory, "survey6.dll"), "server", "probes", "--data-dir", data, "--config", config).Check();
            output.WriteLine(probes.Stderr);
            Assert.StartsWith($"server: degraded: {Attempts} uploads in a row failed on the server since ", probes.Stderr, StringComparison.Ordinal);
            Assert.Contains("Read-only file system", probes.Stderr, StringComparison.Ordinal);

            // The log: the failure once, the degradation once, no trace per attempt.
            await ProbeChanges.EventuallyAsync(() => server.Output.Contains("Server degraded: ", StringComparison.Ordinal), "the server logs that it is degraded");
            Assert.Equal(1, Count(server.Output, $"Uploads from {probe.ProbeId} fail on the server: IOException: Read-only file system"));
            Assert.Equal(1, Count(server.Output, "Server degraded: 3 uploads in a row failed on the server"));
            Assert.Equal(0, Count(server.Output, " at Survey6."));

            // Writable again: the next upload is stored and the degradation clears, with one line giving the count.
            Tool.Run("umount", incoming).Check();
            mounted = false;
            await RawUploadAsync(probe, WholeUpload(Capture(41, 16 << 10)));
            Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
            var cleared = await http.GetStringAsync("/metrics");
            Assert.Equal(0, Sample(cleared, "survey6_server_degraded"));
            Assert.Equal(0, Sample(cleared, "survey6_upload_failures_in_a_row"));
            var after = Tool.Run(Tool.Dotnet(), Path.Combine(AppContext.BaseDirectory, "survey6.dll"), "server", "probes", "--data-dir", data, "--config", config).Check();
            Assert.DoesNotContain("degraded", after.Stderr, StringComparison.Ordinal);

            await ProbeChanges.EventuallyAsync(() => server.Output.Contains("Server no longer degraded", StringComparison.Ordinal), "the server logs that it recovered");
            output.WriteLine(server.Output);
            Assert.Equal(1, Count(server.Output, $"Uploads from {probe.ProbeId} succeed again after {Attempts} failures on the server"));
            Assert.Equal(1, Count(server.Output, $"Server no longer degraded by failing uploads: an upload from {probe.ProbeId} was stored after {Attempts} failures in a row"));
            Assert.Equal(1, Count(server.Output, "fail on the server:"));
        }
        finally
        {
            if (mounted)
                Tool.Run("umount", "-l", incoming);
            server.Kill();
            TempDirectory.Delete(probeRoot);
        }
    }

    [Fact]
    public async Task A_probe_whose_uploads_keep_failing_reports_degraded_with_the_cause_until_a_file_is_stored()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root: it mounts, creates a network namespace and captures");
        await using var server = await ServerHarness.StartAsync(
            new Dictionary<string, string?> { ["Server:InitialPolicy:HeartbeatInterval"] = "00:00:01" },
            services => services.AddSingleton(TimeProvider.System)); // heartbeats carry the probe's wall clock
        var root = Path.Combine(server.Root, "probe");
        var state = Path.Combine(root, "state");
        var probeId = (await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null))).ProbeId;
        using var lab = new Lab();
        var config = WriteConfig(root, lab.HostInterface, new JsonObject
        {
            ["Upload"] = new JsonObject { ["IdleBytesPerSecond"] = 1_000_000, ["QuietPeriod"] = "00:00:01", ["RetryDelay"] = "00:00:01", ["DegradedAfter"] = "00:00:03" },
        });

        // The server's upload directory is read-only before the probe's first file.
        var incoming = Path.Combine(server.DataDirectory, "incoming");
        Directory.CreateDirectory(incoming);
        Tool.Run("mount", "-t", "tmpfs", "-o", "ro,size=1m,mode=0700", "tmpfs", incoming).Check();
        var mounted = true;
        using var daemon = Daemon.Start(config, state);
        try
        {
            using var echoes = lab.PingInBackground(lab.HostAddress);
            await WaitUntilAsync(() => daemon.TryStatus() is { State: ProbeStatus.Degraded, StateReason: { } why } && why.StartsWith("uploads failing since ", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), "the probe degraded by failing uploads", daemon);
            var status = daemon.TryStatus()!;
            output.WriteLine(status.StateReason);
            Assert.Contains("longer than Probe:Upload:DegradedAfter (00:00:03); last error: Unavailable: the server could not complete the upload", status.StateReason, StringComparison.Ordinal);
            Assert.True(status.Upload!.Failures > 0);
            Assert.NotNull(status.Upload.FailingSince);

            // The server hears it in the heartbeat, and is itself degraded by the same failures.
            var health = server.Get<ProbeHealthQuery>();
            await WaitUntilAsync(async () => (await health.GetAsync(probeId)) is { State: ProbeStates.Degraded } h && h.Reasons.Any(r => r.Detail.StartsWith("uploads failing since ", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(30), "the server showing the probe degraded with the cause", daemon);
            var serverHealth = server.Get<ServerHealth>().Read();
            Assert.True(serverHealth.Degraded);
            Assert.Contains(serverHealth.Reasons, r => r.Contains($"failed on the server since", StringComparison.Ordinal) && r.Contains("Read-only file system", StringComparison.Ordinal));

            // Writable again: the next file is stored, and both clear.
            Tool.Run("umount", incoming).Check();
            mounted = false;
            await WaitUntilAsync(() => daemon.TryStatus() is { State: ProbeStatus.Capturing, Upload: { FilesUploaded: > 0, FailingSince: null } },
                TimeSpan.FromSeconds(60), "the probe capturing with its uploads stored", daemon);
            await WaitUntilAsync(async () => (await health.GetAsync(probeId)) is { State: ProbeStates.Healthy }, TimeSpan.FromSeconds(30), "the probe healthy again on the server", daemon);
            Assert.False(server.Get<ServerHealth>().Read().Degraded);
            daemon.Terminate();

            // The failed attempts were counted (above), but the daemon's log names a failing file, not each attempt.
            Assert.Equal(0, Count(daemon.Log, "; attempt "));
            Assert.Equal(1, Count(daemon.Log, "failing, the uploader retries it: Unavailable: "));
        }
        finally
        {
            if (mounted)
                Tool.Run("umount", "-l", incoming);
            output.WriteLine(daemon.Log);
        }
    }

    [Theory]
    [InlineData("DegradedAfter", "0")]
    [InlineData("LogInterval", "00:00:00")]
    public async Task An_invalid_failure_threshold_stops_the_start_with_its_name(string setting, string value)
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ServerHarness.StartAsync(new Dictionary<string, string?> { ["Server:Uploads:Failures:" + setting] = value }));
        Assert.Contains(setting, e.Message, StringComparison.Ordinal);
    }

    private static int Count(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
            count++;
        return count;
    }
}

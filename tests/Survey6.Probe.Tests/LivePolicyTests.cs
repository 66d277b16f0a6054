using System.Text.Json.Nodes;
using Survey6.Contracts.V1;
using Survey6.Probe.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>
/// Policies that change what is captured, on a real veth: applied live (capture restarted, queued frames kept,
/// new files with the new IDBs), rejected with libpcap's reason when they cannot work, persisted across restarts;
/// and a probe killed again and again after a policy change falls back to its last known-good policy.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class LivePolicyTests
{
    [Fact]
    public async Task A_filter_and_snaplen_change_restarts_capture_without_losing_queued_frames_and_persists()
    {
        const int Pings = 8;
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        var settings = ProbeHarness.Settings(state.Path, lab.HostInterface);
        await using (var probe = await ProbeHarness.StartAsync(settings))
        {
            probe.RequireCapturing();
            lab.Ping(lab.HostAddress, 1);
            await ProbeHarness.WaitUntilAsync(() => probe.Daemon.GetStatus().Capture.Written >= 2, TimeSpan.FromSeconds(10), "the first echo");

            // Hold the writer so that the next echoes are still queued when the policy arrives.
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            probe.Writer.DrainGate = ct => gate.Task.WaitAsync(ct);
            lab.Ping(lab.HostAddress, Pings);
            await ProbeHarness.WaitUntilAsync(() => probe.Daemon.GetStatus().Capture.Captured >= 2 + 2 * Pings, TimeSpan.FromSeconds(10), "the echoes captured");
            Assert.True(probe.Daemon.GetStatus().Capture.QueueDepth > 0);
            // Echo requests only, first 96 bytes.
            var apply = probe.Policies.ApplyAsync(new Policy { Version = 2, CaptureFilter = "icmp6 and ip6[40] == 128", Snaplen = 96 }, probe.Daemon, CancellationToken.None);
            await Task.Delay(200);
            Assert.False(apply.IsCompleted); // the restart waits until the old file took the queued frames
            probe.Writer.DrainGate = null;
            gate.SetResult();
            var (ok, message) = await apply.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(ok, message);
            Assert.Contains("capture " + lab.HostInterface + " 'icmp6 and ip6[40] == 128' snaplen 96", message, StringComparison.Ordinal);

            var status = probe.Daemon.GetStatus();
            Assert.Equal(ProbeStatus.Capturing, status.State);
            Assert.Equal("icmp6 and ip6[40] == 128", status.Filter);
            Assert.Equal(96, status.SnapLength);
            Assert.Equal(2, status.Policy!.Version);
            Assert.Equal("server", status.Policy.Source);

            lab.Ping(lab.HostAddress, Pings, size: 200);
            await ProbeHarness.WaitUntilAsync(() => probe.Daemon.GetStatus().Capture.Written >= 2 + 3 * Pings, TimeSpan.FromSeconds(10), "the echo requests under the new filter");

            // Unworkable policies: a filter libpcap cannot compile, an interface the host does not have.
            (ok, message) = await probe.Policies.ApplyAsync(new Policy { Version = 3, CaptureFilter = "ip6 and nonsense here" }, probe.Daemon, CancellationToken.None);
            Assert.False(ok);
            Assert.Contains("policy 3 rejected, policy 2 stays in force: filter 'ip6 and nonsense here' does not compile on '" + lab.HostInterface + "' (link type", message, StringComparison.Ordinal);
            (ok, message) = await probe.Policies.ApplyAsync(new Policy { Version = 4, CaptureFilter = "icmp6 and ip6[40] == 128", Snaplen = 96, Interfaces = { lab.HostInterface, "s6nosuch0" } }, probe.Daemon, CancellationToken.None);
            Assert.False(ok);
            Assert.Contains("no interface 's6nosuch0'", message, StringComparison.Ordinal);
            status = probe.Daemon.GetStatus();
            Assert.Equal((2L, "icmp6 and ip6[40] == 128", ProbeStatus.Capturing), (status.Policy!.Version, status.Filter, status.State));
            await probe.StopAsync();
        }

        var files = SpoolContents.Read(Path.Combine(state.Path, "spool"));
        var before = files.Where(f => f.CloseReason == "policy").ToList();
        var old = Assert.Single(before);
        // Every frame queued when the policy arrived went to the old file, with the old filter in its IDB.
        Assert.Equal(Pings + 1, old.Frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.Equal(Pings + 1, old.Frames.Count(f => f.IsEchoReply(lab.HostAddress, lab.NamespaceAddress)));
        Assert.Equal(CaptureOptions.DefaultFilter, old.Filters[0]);
        var after = files.Where(f => f != old && f.Frames.Count > 0).ToList();
        Assert.NotEmpty(after);
        Assert.All(after, f => Assert.Equal(("icmp6 and ip6[40] == 128", 96u), (f.Filters[0], f.SnapLengths[0])));
        var frames = after.SelectMany(f => f.Frames).ToList();
        Assert.Equal(Pings, frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.DoesNotContain(frames, f => f.IcmpType == 129);
        Assert.All(frames, f => Assert.True(f.CapturedLength <= 96 && f.OriginalLength > 200));
        foreach (var f in files)
            CaptureTests.AssertTsharkReads(f.Path, f.Frames.Count);

        // Persisted: a restart captures with policy 2.
        await using (var restarted = await ProbeHarness.StartAsync(settings))
        {
            var status = restarted.Daemon.GetStatus();
            Assert.Equal((2L, "icmp6 and ip6[40] == 128", 96), (status.Policy!.Version, status.Filter, status.SnapLength));
            restarted.RequireCapturing();
        }
    }

    [Fact]
    public async Task A_probe_killed_before_it_gets_healthy_after_a_policy_change_falls_back_to_the_last_known_good_policy()
    {
        using var lab = new NetworkLab();
        using var dir = new TempDirectory();
        var stateDirectory = dir.Combine("state");
        Directory.CreateDirectory(stateDirectory);
        var config = DaemonProcess.WriteConfig(dir.Path, lab.HostInterface,
            ("Probe:Policy:CrashLoopStarts", JsonValue.Create(2)),
            ("Probe:Policy:CrashLoopWindow", JsonValue.Create("00:10:00")),
            ("Probe:Policy:HealthyAfter", JsonValue.Create("00:00:03")));

        // Policy 5 runs healthy; then policy 7 arrives, and this run ends before policy 7 proved itself (the run
        // that applied it counts as its first start).
        await using (var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(stateDirectory, lab.HostInterface,
            ("Probe:Policy:CrashLoopStarts", "2"), ("Probe:Policy:HealthyAfter", "00:00:03"))))
        {
            Assert.Null(probe.Daemon.GetStatus().Policy!.Fallback);
            var (ok, message) = await probe.Policies.ApplyAsync(new Policy { Version = 5, CaptureFilter = "ip6" }, probe.Daemon, CancellationToken.None);
            Assert.True(ok, message);
            await ProbeHarness.WaitUntilAsync(() => probe.Daemon.GetStatus().Policy!.Proven, TimeSpan.FromSeconds(15), "policy 5 proven healthy");
            Assert.True(File.Exists(Path.Combine(stateDirectory, "policy-good.json")));
            (ok, message) = await probe.Policies.ApplyAsync(new Policy { Version = 7, CaptureFilter = "icmp6" }, probe.Daemon, CancellationToken.None);
            Assert.True(ok, message);
            var status = probe.Daemon.GetStatus();
            Assert.Equal((7L, "icmp6", false), (status.Policy!.Version, status.Filter, status.Policy.Proven));
        }

        using (var daemon = await DaemonProcess.StartAsync(config, stateDirectory))
        {
            Assert.Equal(7, daemon.Status().Policy!.Version); // one more start
            daemon.Kill();
        }

        using (var daemon = await DaemonProcess.StartAsync(config, stateDirectory))
        {
            var status = daemon.Status();
            Assert.Equal((5L, "ip6"), (status.Policy!.Version, status.Filter));
            var fallback = Assert.IsType<Policies.PolicyFallback>(status.Policy.Fallback);
            Assert.Equal((7L, 5L), (fallback.FromVersion, fallback.ToVersion));
            Assert.Contains("Fell back from policy 7 to policy 5", daemon.Log, StringComparison.Ordinal);
            await ProbeHarness.WaitUntilAsync(() => daemon.Status().State == ProbeStatus.Capturing, TimeSpan.FromSeconds(10), "capture with policy 5");
            var (exit, output, _) = await DaemonProcess.CliAsync("probe", "status", "--state-dir", stateDirectory);
            Assert.Equal(0, exit);
            Assert.Contains("fallback:", output, StringComparison.Ordinal);
            Assert.Contains("policy 7 was in force for 2 starts", output, StringComparison.Ordinal);
            daemon.Terminate();
        }

        Assert.Contains("\"version\": \"5\"", File.ReadAllText(Path.Combine(stateDirectory, "policy.json")), StringComparison.Ordinal);
    }
}

using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Survey6.Contracts.Manifests;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Xunit.Abstractions;
using Daemon = Survey6.Server.Tests.ProbeUplinkEndToEndTests.Daemon;
using Lab = Survey6.Server.Tests.ProbeUplinkEndToEndTests.Lab;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// Real drops, probe to lake: <c>survey6 probe run</c> capturing on a veth of this test's namespace, with the product's
/// default capture configuration but for one fault, uploads to a real server; <c>survey6 aggregate once</c> builds the
/// lake. Every drop the probe counted, of every kind, must be in <c>captures</c> and in <c>summary.dropped</c>, exactly.
/// The probe captures whatever crosses the link (neighbour discovery too): the assertions count every frame, not only
/// the echoes the test sends.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class ProbeDropsToLakeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_burst_into_a_tiny_capture_queue_drops_frames_and_the_lake_counts_each_of_them()
    {
        await using var server = await StartServerAsync();
        var (state, probeId) = await JoinAsync(server);
        using var lab = new Lab();
        // The fault: a capture queue of one frame.
        var config = ProbeUplinkEndToEndTests.WriteConfig(Path.Combine(server.Root, "probe"), lab.HostInterface, new JsonObject
        {
            ["Capture"] = new JsonObject { ["Interfaces"] = new JsonArray(lab.HostInterface), ["QueueCapacity"] = 1 },
        });
        using var daemon = Daemon.Start(config, state);
        try
        {
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is { State: ProbeStatus.Capturing }, Patience, "the probe capturing", daemon);
            // 2,000 echoes back to back: libpcap hands them over in batches, far faster than one slot drains.
            using (var burst = lab.PingInBackground(lab.HostAddress, 2000, 0))
                burst.WaitForExit(Patience);
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is { Capture.QueueDropped: > 0 }, Patience, "queue drops", daemon);

            var counted = await SuspendAndDrainAsync(daemon, state);
            await AssertTheLakeCountsWhatTheProbeCountedAsync(server, probeId, counted);
            daemon.Terminate();
        }
        finally
        {
            output.WriteLine(daemon.Log);
        }
    }

    [Fact]
    public async Task A_full_spool_disk_drops_frames_and_the_lake_counts_each_of_them()
    {
        await using var server = await StartServerAsync();
        var (state, probeId) = await JoinAsync(server);
        using var lab = new Lab();
        // The fault: the spool on a 16 MiB file system that something else has filled, up to 256 KiB below the
        // lab's 1 MiB minimum. With nothing in the spool to evict, the guard must drop what it cannot write.
        using var disk = new Tmpfs("16m");
        var ballast = Path.Combine(disk.Path, "ballast.bin");
        await using (var fill = new FileStream(ballast, FileMode.CreateNew))
        {
            var block = new byte[1 << 20];
            for (var left = new DriveInfo(disk.Path).AvailableFreeSpace - (256 << 10); left > 0; left -= block.Length)
                await fill.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, left)));
        }

        var config = ProbeUplinkEndToEndTests.WriteConfig(Path.Combine(server.Root, "probe"), lab.HostInterface, new JsonObject
        {
            ["Capture"] = new JsonObject { ["Interfaces"] = new JsonArray(lab.HostInterface) },
            ["Spool"] = new JsonObject { ["Directory"] = disk.Path, ["RotateAge"] = "00:00:02", ["MinFreeDiskBytes"] = 1 << 20 },
        });
        using var daemon = Daemon.Start(config, state);
        try
        {
            // Capturing, or already degraded by the guard if the link carried a frame before the first look.
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is { State: ProbeStatus.Capturing } or { Spool.Guard: "full" }, Patience, "the probe capturing", daemon);
            lab.Ping(lab.HostAddress, 20);
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is { Capture.DiskDropped: >= 40, Spool.Guard: "full" }, Patience, "disk drops", daemon);
            Assert.Equal(0, daemon.TryStatus()!.Capture.Written);

            // Room again: the next file's statistics carry the drops of the window before it.
            File.Delete(ballast);
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is { Spool.Guard: "ok" }, Patience, "the guard to see room again", daemon);
            lab.Ping(lab.HostAddress, 3);
            await ProbeUplinkEndToEndTests.WaitUntilAsync(() => daemon.TryStatus() is { Capture.Written: >= 6 }, Patience, "echoes written again", daemon);

            var counted = await SuspendAndDrainAsync(daemon, state);
            Assert.Equal(0, counted.Spool.EvictedFiles);
            Assert.True(counted.Capture.DiskDropped >= 40, $"only {counted.Capture.DiskDropped} disk drops");
            await AssertTheLakeCountsWhatTheProbeCountedAsync(server, probeId, counted);
            daemon.Terminate();
        }
        finally
        {
            output.WriteLine(daemon.Log);
        }
    }

    private static Task<ServerHarness> StartServerAsync() => ServerHarness.StartAsync(
        new Dictionary<string, string?> { ["Server:InitialPolicy:HeartbeatInterval"] = "00:00:01" },
        // Heartbeats carry the probe's wall clock: the server must use the real one, or it sees skew.
        services => services.AddSingleton(TimeProvider.System));

    private static async Task<(string State, string ProbeId)> JoinAsync(ServerHarness server)
    {
        var state = Path.Combine(server.Root, "probe", "state");
        var joined = await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null)
        {
            Timeout = TimeSpan.FromSeconds(20),
        });
        return (state, joined.ProbeId);
    }

    /// <summary>Suspends the probe (its open file closes with the window's counters) and waits until every file is on the server.</summary>
    private static async Task<ProbeStatus> SuspendAndDrainAsync(Daemon daemon, string state)
    {
        await CliOkAsync("probe", "suspend", "--reason", "counting drops", "--state-dir", state);
        await ProbeUplinkEndToEndTests.WaitUntilAsync(
            () => daemon.TryStatus() is { State: ProbeStatus.Suspended, Spool.Files: 0, Spool.CurrentFile: null, Capture.QueueDepth: 0 },
            Patience, "the probe suspended with every file uploaded", daemon);
        return daemon.TryStatus()!;
    }

    /// <summary>The probe's own counters against the stored manifests, <c>captures</c> and <c>summary</c>.</summary>
    private async Task AssertTheLakeCountsWhatTheProbeCountedAsync(ServerHarness server, string probeId, ProbeStatus counted)
    {
        var c = counted.Capture;
        Assert.Equal(c.Captured, c.Written + c.QueueDropped + c.DiskDropped);
        await CliOkAsync("aggregate", "once", "--include-open", "--data-dir", server.DataDirectory);

        // Each stored capture's row holds what its manifest says, kind by kind.
        var stored = Directory.GetFiles(Path.Combine(server.DataDirectory, "captures", probeId), "*.manifest.json", SearchOption.AllDirectories)
            .Select(StoredCaptureManifest.Load).ToList();
        var rows = Query(server, $"SELECT capture_sha256, frames, kernel_dropped, interface_dropped, queue_dropped, disk_dropped, drop_source FROM captures WHERE probe_id = '{probeId}' ORDER BY 1");
        Assert.Equal(
            stored.OrderBy(m => m.Sha256, StringComparer.Ordinal)
                .Select(m => $"{m.Sha256},{m.ProbeManifest!.Frames},{m.ProbeManifest.Drops.Kernel},{m.ProbeManifest.Drops.Interface},{m.ProbeManifest.Drops.Queue},{m.ProbeManifest.Drops.Disk},manifest"),
            rows);

        // Over all of them: exactly the probe's counters.
        var expected = string.Join(',', c.Written, c.KernelDropped, c.InterfaceDropped, c.QueueDropped, c.DiskDropped);
        var lake = Assert.Single(Query(server,
            $"SELECT sum(frames), sum(kernel_dropped), sum(interface_dropped), sum(queue_dropped), sum(disk_dropped) FROM captures WHERE probe_id = '{probeId}'"));
        Assert.Equal(expected, lake);
        var dropped = c.KernelDropped + c.InterfaceDropped + c.QueueDropped + c.DiskDropped;
        var summary = Assert.Single(Query(server, $"SELECT sum(frames), sum(dropped) FROM summary WHERE probe_id = '{probeId}'"));
        Assert.Equal($"{c.Written},{dropped}", summary);
        foreach (var hour in Query(server, $"SELECT frames, dropped, completeness FROM summary WHERE probe_id = '{probeId}'"))
        {
            var v = hour.Split(',');
            Assert.Equal(double.Parse(v[0], CultureInfo.InvariantCulture) / (double.Parse(v[0], CultureInfo.InvariantCulture) + double.Parse(v[1], CultureInfo.InvariantCulture)),
                double.Parse(v[2], CultureInfo.InvariantCulture), 12);
        }

        output.WriteLine($"probe counted: captured {c.Captured}, written {c.Written}, kernel {c.KernelDropped}, interface {c.InterfaceDropped}, queue {c.QueueDropped}, disk {c.DiskDropped}");
        output.WriteLine($"lake captures ({rows.Count} files): frames, kernel, interface, queue, disk = {lake}; summary frames, dropped = {summary}");
    }

    private static List<string> Query(ServerHarness server, string sql) => ManifestToLakeTests.QueryRows(server.DataDirectory, sql);

    private static async Task CliOkAsync(params string[] arguments)
    {
        var (exit, output, error) = await ManifestToLakeTests.CliAsync(arguments);
        Assert.True(exit == 0, $"survey6 {string.Join(' ', arguments)} exited {exit}: {error}{output}");
    }
}

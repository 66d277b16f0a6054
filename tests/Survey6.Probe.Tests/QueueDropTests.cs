using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>When the spool writer falls behind, frames that find the queue full are dropped and counted, never lost silently.</summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class QueueDropTests
{
    [Fact]
    public async Task Frames_that_find_the_queue_full_are_counted_as_queue_drops()
    {
        const int Pings = 30, Capacity = 4;
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = false;
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface,
            ("Probe:Capture:QueueCapacity", Capacity.ToString())));
        probe.RequireCapturing();
        // One echo through first: the writer has taken the run's start signal and is idle.
        lab.Ping(lab.HostAddress, 1);
        await ProbeHarness.WaitUntilAsync(() => probe.Daemon.GetStatus().Capture.Written >= 2, TimeSpan.FromSeconds(10), "the first echo");
        // Hold the writer (test hook): it stops draining before its next batch.
        probe.Writer.DrainGate = ct => held ? gate.Task.WaitAsync(ct) : Task.CompletedTask;
        held = true;
        lab.Ping(lab.HostAddress, Pings, interval: 0.005);
        var during = probe.Daemon.GetStatus().Capture;
        Assert.True(during.QueueDropped > 0, $"no queue drop while the writer was held ({during.Captured} captured)");
        gate.SetResult();
        await probe.WaitForQueueDrainedAsync();
        await probe.StopAsync();

        var totals = probe.Engine.Totals();
        Assert.True(totals.QueueDropped >= 2 * Pings - Capacity - 4, $"{totals.QueueDropped} queue drops of {totals.Captured}");
        Assert.Equal(totals.Captured, totals.Written + totals.QueueDropped);
        var files = SpoolContents.Read(probe.Spool.Root);
        Assert.Equal(totals.Written, files.Sum(f => f.Frames.Count));
        // The drops are in the files' statistics (ISB comment) and manifests, window by window.
        Assert.Equal(totals.QueueDropped, files.Sum(f => QueueDrops(f)));
        Assert.Equal(totals.QueueDropped, files.Sum(f => f.Manifest.GetProperty("drops").GetProperty("queue").GetInt64()));
        Assert.Equal(totals.QueueDropped, probe.Daemon.GetStatus().Capture.QueueDropped);
    }

    private static long QueueDrops(SpoolCapture file)
    {
        var drops = Survey6.Packets.Capture.PcapngMetadata.ParseDrops(
            Survey6.Packets.Capture.PcapngMetadata.CommentValue(Assert.Single(file.Statistics), Survey6.Packets.Capture.PcapngMetadata.Drops));
        Assert.NotNull(drops);
        return drops.Value.Queue;
    }
}

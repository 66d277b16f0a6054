using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Survey6.Packets.Capture;
using Survey6.Probe.Capture;
using Survey6.Probe.Spool;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>
/// The disk guard on a 2 MiB tmpfs: the spool never takes the file system below its minimum free
/// space, with either policy, and every frame is either in a file, in an evicted file, or counted
/// as a disk drop.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class DiskGuardTests
{
    private const long MinFree = 512 << 10;
    private const int Frames = 4000;
    private const int FramePadding = 900; // about 1 KB frames: 4 MB offered to a 2 MiB file system

    [Fact]
    public async Task Evict_oldest_deletes_old_files_counts_them_and_never_fills_the_disk()
    {
        using var disk = new Tmpfs("2m");
        await using var pipeline = await SyntheticPipeline.StartAsync(disk.Path, DiskPolicy.EvictOldest);
        var minFree = await pipeline.OfferAsync(Frames, FramePadding);
        await pipeline.StopAsync();

        var totals = pipeline.Run.Totals();
        var summary = pipeline.Spool.Summary();
        Assert.True(summary.EvictedFiles > 0, "nothing was evicted");
        Assert.Equal(Frames, totals.Captured);
        // Every frame is somewhere: a file still there, a file evicted (counted with its frames), or a disk drop.
        var kept = pipeline.Spool.ClosedFiles().Sum(f => f.Frames);
        Assert.Equal(Frames, kept + summary.EvictedFrames + totals.DiskDropped);
        Assert.Equal(totals.Written, kept + summary.EvictedFrames);
        Assert.True(minFree >= MinFree - (64 << 10), $"free space fell to {minFree} (minimum {MinFree})");
        Assert.True(pipeline.Spool.FreeDiskBytes() >= MinFree);
        Assert.False(Directory.Exists(Path.Combine(disk.Path, "damaged")));
        foreach (var file in SpoolContents.Read(disk.Path))
            Assert.Equal(file.Frames.Count, file.Manifest.GetProperty("frames").GetInt32());
        // The newest frames win: the last file holds the last frame offered.
        Assert.Equal(SyntheticPipeline.Epoch + Frames - 1, pipeline.Spool.ClosedFiles()[^1].LastFrameNanoseconds);
        Assert.Equal(0, totals.DiskDropped); // there was always an older file to make room
    }

    [Fact]
    public async Task Pause_capture_keeps_every_file_counts_what_it_discards_and_resumes_when_uploads_free_space()
    {
        using var disk = new Tmpfs("2m");
        await using var pipeline = await SyntheticPipeline.StartAsync(disk.Path, DiskPolicy.PauseCapture);
        var minFree = await pipeline.OfferAsync(Frames, FramePadding);
        await ProbeHarness.WaitUntilAsync(() => pipeline.Writer.GuardState == DiskGuardState.Paused, TimeSpan.FromSeconds(5), "the guard to pause");

        var totals = pipeline.Run.Totals();
        Assert.Equal(0, pipeline.Spool.Summary().EvictedFiles);
        Assert.True(totals.DiskDropped > 0, "nothing was discarded");
        Assert.Null(pipeline.Writer.CurrentFile); // the file was closed when the guard tripped: complete and uploadable
        Assert.Equal(totals.Written, pipeline.Spool.ClosedFiles().Sum(f => f.Frames));
        Assert.Equal(Frames, totals.Written + totals.DiskDropped);
        Assert.True(minFree >= MinFree - (64 << 10), $"free space fell to {minFree} (minimum {MinFree})");
        Assert.Equal("disk-guard", SpoolContents.Read(disk.Path)[^1].CloseReason);

        // The uploader acknowledges the oldest files: room comes back, writing resumes.
        foreach (var file in pipeline.Spool.ClosedFiles().Take(8))
            Assert.True(pipeline.Spool.Complete(file));
        await ProbeHarness.WaitUntilAsync(() => pipeline.Writer.GuardState == DiskGuardState.Ok, TimeSpan.FromSeconds(5), "the guard to resume");
        var before = pipeline.Run.Totals();
        await pipeline.OfferAsync(20, FramePadding, firstIndex: Frames);
        await pipeline.StopAsync();
        var after = pipeline.Run.Totals();
        Assert.Equal(before.Written + 20, after.Written);
        Assert.Equal(before.DiskDropped, after.DiskDropped);
    }

    /// <summary>Queue, spool directory and writer as the daemon wires them, fed with synthetic frames (no libpcap).</summary>
    private sealed class SyntheticPipeline : IAsyncDisposable
    {
        public const long Epoch = 1_700_000_000_000_000_000;
        private readonly Task _writerTask;
        private readonly CaptureQueue _queue;
        private bool _stopped;

        private SyntheticPipeline(CaptureQueue queue, SpoolDirectory spool, SpoolWriter writer, CaptureRun run, Task writerTask)
        {
            _queue = queue;
            Spool = spool;
            Writer = writer;
            Run = run;
            _writerTask = writerTask;
        }

        public SpoolDirectory Spool { get; }

        public SpoolWriter Writer { get; }

        public CaptureRun Run { get; }

        public static async Task<SyntheticPipeline> StartAsync(string directory, DiskPolicy policy)
        {
            var options = Options.Create(new SpoolOptions
            {
                RotateSizeBytes = 64 << 10,
                MaxSpoolBytes = 1L << 30, // the file system is the limit here
                MinFreeDiskBytes = MinFree,
                DiskPolicy = policy,
                GuardInterval = TimeSpan.FromMilliseconds(50),
            });
            Assert.True(new SpoolOptionsValidator().Validate(null, options.Value).Succeeded);
            var identity = ProbeIdentity.From(new ProbeOptions { StateDirectory = directory, Id = "p-test" });
            var queue = new CaptureQueue(100_000, 256L << 20);
            var spool = new SpoolDirectory(directory, NullLogger<SpoolDirectory>.Instance);
            spool.Recover();
            var writer = new SpoolWriter(queue, spool, options, identity, TimeProvider.System, NullLogger<SpoolWriter>.Instance);
            var writerTask = Task.Run(() => writer.RunAsync(CancellationToken.None));
            var run = new CaptureRun(1, DateTimeOffset.UtcNow, [new ProbeInterface(0, "synthetic0", LinkType.Ethernet, 2048, CaptureOptions.DefaultFilter)]);
            var started = new RunStartedSignal(run);
            await queue.SignalAsync(started, CancellationToken.None);
            await started.Done;
            return new SyntheticPipeline(queue, spool, writer, run, writerTask);
        }

        /// <summary>Offers frames at a pace the writer keeps up with; returns the least free space seen meanwhile.</summary>
        public async Task<long> OfferAsync(int count, int padding, int firstIndex = 0)
        {
            var frame = TestFrames.EchoRequest(padding);
            var minFree = long.MaxValue;
            for (var i = 0; i < count; i++)
            {
                Assert.True(_queue.TryEnqueue(Run.Interfaces[0], Epoch + firstIndex + i, frame, (uint)frame.Length));
                if (i % 50 == 0)
                {
                    minFree = Math.Min(minFree, Spool.FreeDiskBytes());
                    while (_queue.Count > 0)
                        await Task.Delay(1);
                }
            }

            while (_queue.Count > 0)
                await Task.Delay(1);
            return Math.Min(minFree, Spool.FreeDiskBytes());
        }

        public async Task StopAsync()
        {
            if (_stopped)
                return;
            _stopped = true;
            var stopped = new RunStoppedSignal(Run, CloseReason.Stop);
            await _queue.SignalAsync(stopped, CancellationToken.None);
            await stopped.Done;
            _queue.Complete();
            await _writerTask;
        }

        public async ValueTask DisposeAsync() => await StopAsync();
    }
}

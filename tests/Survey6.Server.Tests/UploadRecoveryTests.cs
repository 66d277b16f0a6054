using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Survey6.Probe.Upload;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;
using static Survey6.Server.Tests.UploadTestSupport;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class UploadRecoveryTests
{
    [Fact]
    public async Task A_capture_stored_but_never_queued_is_queued_and_recorded_when_the_server_starts()
    {
        var root = TempDirectory.Create();
        var data = Path.Combine(root, "server");
        var bytes = Capture(20, 50 << 10);
        var sha = Sha(bytes);
        // As a crash between the rename and the queue leaves it: stored, manifest written, no .queued marker.
        var failing = CaptureStoredSink.FromDelegate((_, _) => throw new IOException("queue down"));
        var store = new CaptureStore(Microsoft.Extensions.Options.Options.Create(new CaptureStoreOptions { DataDirectory = data }), failing);
        await using (var session = await store.BeginAsync("p-aaaaaaaaaaaa", new UploadHeader(sha, bytes.Length, BaseTime, BaseTime.AddMinutes(1), "")))
        {
            await session.WriteAsync(0, bytes);
            await Assert.ThrowsAsync<IOException>(async () => await session.CompleteAsync(sha));
        }

        var stored = Assert.Single(StoredCopies(data, sha));
        Assert.False(File.Exists(Path.ChangeExtension(stored, ".queued")));

        await using var server = await ServerHarness.StartAsync(root);
        Assert.Equal([sha], QueuedShas(data));
        Assert.True(File.Exists(Path.ChangeExtension(stored, ".queued")));
        var record = Assert.Single(server.Get<UploadRecords>().Recent(10));
        Assert.Equal(("p-aaaaaaaaaaaa", sha, false, BaseTime), (record.ProbeId, record.Sha256, record.Duplicate, record.WindowStart));
    }

    [Fact]
    public async Task The_token_bucket_paces_bytes_and_lets_a_burst_through()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch);
        var bucket = new TokenBucketRateLimiter(1000, 500, time);
        Assert.True(bucket.WaitAsync(500, default).AsTask().IsCompleted); // the burst
        var waiting = bucket.WaitAsync(250, default).AsTask();
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(249));
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await waiting;

        // Larger than the bucket: waits only for what the full bucket lacks; the next one queues behind it.
        time.Advance(TimeSpan.FromSeconds(10));
        var large = bucket.WaitAsync(2000, default).AsTask();
        var next = bucket.WaitAsync(100, default).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(1500));
        await large;
        Assert.False(next.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(100));
        await next;

        bucket.SetRate(0);
        Assert.True(bucket.WaitAsync(1 << 30, default).AsTask().IsCompleted);
    }

    [Fact]
    public void Uploader_options_are_checked()
    {
        var e = Assert.Throws<OptionsValidationException>(() => new CaptureUploader(
            Grpc.Net.Client.GrpcChannel.ForAddress("https://127.0.0.1:1").CreateCallInvoker(),
            Microsoft.Extensions.Options.Options.Create(new CaptureUploaderOptions { ChunkBytes = 10 << 20, MaxBackoff = TimeSpan.Zero })));
        Assert.Contains(e.Failures, f => f.StartsWith("ChunkBytes", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.StartsWith("MaxBackoff", StringComparison.Ordinal));
    }
}

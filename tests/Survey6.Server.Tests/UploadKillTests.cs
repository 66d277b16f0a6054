using Survey6.Probe.Upload;
using Survey6.Server.Storage;
using Xunit.Abstractions;
using static Survey6.Server.Tests.UploadTestSupport;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// The guarantee end to end: a server SIGKILLed in the middle of concurrent uploads and restarted on the same data
/// directory loses no acknowledged capture, stores and queues nothing twice, and lets every interrupted upload finish.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class UploadKillTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Acknowledged_captures_survive_a_SIGKILL_and_interrupted_uploads_complete_after_a_restart()
    {
        var data = Path.Combine(_root, "server");
        var server = await ServerProcess.StartAsync(data, 0);
        try
        {
            var url = server.GrpcUrl;
            var token = new TokenStore(StateDatabase.OpenAndMigrate(Path.Combine(data, "state.db")), TimeProvider.System)
                .Create(TimeSpan.FromHours(1), 2, new Dictionary<string, string>(), "kill test").Token;
            using var probeA = await JoinAsync(url, token, server.Pin, Path.Combine(_root, "probe-a"));
            using var probeB = await JoinAsync(url, token, server.Pin, Path.Combine(_root, "probe-b"));

            int[] sizes = [1 << 20, 3 << 19, 2 << 20, 5 << 19, 3 << 20, 4 << 20];
            var files = sizes.Select((size, i) =>
            {
                var bytes = Capture(100 + i, size);
                return (Path: Write(Path.Combine(_root, "spool"), bytes), Sha: Sha(bytes), Bytes: bytes, Probe: i % 2 == 0 ? probeA : probeB);
            }).ToList();
            var options = new CaptureUploaderOptions
            {
                ChunkBytes = 64 << 10,
                MaxAttempts = 60,
                InitialBackoff = TimeSpan.FromMilliseconds(100),
                MaxBackoff = TimeSpan.FromSeconds(1),
                StallTimeout = TimeSpan.FromSeconds(15),
            };
            var sent = new long[files.Count];
            var uploads = files.Select((file, i) => Task.Run(() =>
                Uploader(file.Probe, options, new TokenBucketRateLimiter(1_500_000, 64 << 10))
                    .UploadAsync(file.Path, Manifest(file.Path), new Progress(sent, i)))).ToArray();

            // Kill once some captures are acknowledged while others are part-way through.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(uploads.Any(u => u.IsCompletedSuccessfully)
                     && Enumerable.Range(0, files.Count).Count(i => !uploads[i].IsCompleted && Volatile.Read(ref sent[i]) > 0) >= 2))
            {
                Assert.True(DateTime.UtcNow < deadline, "uploads did not get going:\n" + server.Output);
                Assert.DoesNotContain(uploads, u => u.IsFaulted);
                await Task.Delay(10);
            }

            server.Kill();
            var acknowledged = Enumerable.Range(0, files.Count).Where(i => uploads[i].IsCompletedSuccessfully).ToList();
            output.WriteLine($"killed with {acknowledged.Count} of {files.Count} acknowledged; sent so far: {string.Join(", ", sent)}");
            Assert.InRange(acknowledged.Count, 1, files.Count - 1);

            // With the server dead: every acknowledged capture is durable, whole, stored once and queued once.
            var queued = QueuedShas(data);
            foreach (var i in acknowledged)
            {
                Assert.Equal(files[i].Bytes, await File.ReadAllBytesAsync(Assert.Single(StoredCopies(data, files[i].Sha))));
                Assert.Single(queued, files[i].Sha);
            }

            server.Dispose();
            server = await ServerProcess.StartAsync(data, url.Port);
            Assert.Equal(url, server.GrpcUrl);
            var results = await Task.WhenAll(uploads).WaitAsync(TimeSpan.FromSeconds(60));

            server.Kill();
            for (int i = 0; i < files.Count; i++)
            {
                output.WriteLine($"{files[i].Sha[..12]} {files[i].Bytes.Length} bytes: {results[i].Attempts} attempts, {results[i].BytesSent} sent, last from {results[i].ResumedFrom}");
                Assert.Equal(files[i].Sha, results[i].Ack.Sha256);
                var copy = Assert.Single(StoredCopies(data, files[i].Sha));
                Assert.StartsWith(Path.Combine(data, "captures", files[i].Probe.ProbeId, "2025-03-14") + Path.DirectorySeparatorChar, copy, StringComparison.Ordinal);
                Assert.Equal(files[i].Bytes, await File.ReadAllBytesAsync(copy));
                Assert.True(File.Exists(Path.ChangeExtension(copy, ".manifest.json")));
                Assert.True(File.Exists(Path.ChangeExtension(copy, ".queued")));
                Assert.False(File.Exists(Path.Combine(data, "incoming", files[i].Probe.ProbeId, files[i].Sha + ".part")));
                Assert.False(File.Exists(Path.Combine(data, "incoming", files[i].Probe.ProbeId, files[i].Sha + ".meta")));
            }

            Assert.Equal(files.Select(f => f.Sha).Order(), QueuedShas(data).Order());
            Assert.Equal(files.Select(f => f.Sha).Order(), UploadRows(data).Where(r => !r.Duplicate).Select(r => r.Sha).Order());
            // The uploads cut off by the kill picked up from what the first server had written.
            Assert.Contains(Enumerable.Range(0, files.Count).Except(acknowledged), i => results[i].Attempts > 1 && results[i].ResumedFrom > 0);
        }
        catch
        {
            output.WriteLine(server.Output);
            throw;
        }
        finally
        {
            server.Dispose();
        }
    }

    private sealed class Progress(long[] sent, int index) : IProgress<long>
    {
        public void Report(long value) => Volatile.Write(ref sent[index], value);
    }
}

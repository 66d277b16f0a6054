using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Testbed;
using Survey6.Ingest;
using Xunit.Abstractions;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// Scale-out for real: a redis-server started here, captures queued on its stream as the C&amp;C queues them, and two
/// <c>survey6 aggregate run</c> worker processes sharing the data folder. One worker is SIGKILLed while it writes a
/// packets file; the other takes the capture over once the lease runs out.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class QueueWorkerTests(RedisServerFixture redis, ITestOutputHelper output)
{
    private const string Probe = "probe-a";
    private const string Date = "2024-05-01";
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Two_workers_parse_every_capture_exactly_once_and_a_SIGKILLed_workers_capture_is_taken_over()
    {
        using var w = new Workspace();
        var stream = "survey6:test:" + Guid.NewGuid().ToString("N")[..12];

        // Big enough that writing one packets file takes a while, so a worker can be caught in the middle of one.
        var frames = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < 6; i++)
        {
            var count = 250_000 + (i * 10_000);
            var sha = StoreLargeCapture(w, i, count);
            frames[sha] = count;
        }

        var ingest = Options.Create(new IngestOptions
        {
            Kind = IngestQueueKind.Redis,
            LeaseTime = Lease,
            MaxAttempts = 5,
            Redis = new RedisIngestOptions { Configuration = redis.Configuration, Stream = stream },
        });
        using (var producer = new RedisStreamsIngestQueue(redis.Connection, ingest, TimeProvider.System))
        {
            foreach (var sha in frames.Keys)
            {
                var path = w.CapturePath(sha);
                Assert.True(await producer.EnqueueAsync(new CaptureEnqueued(sha, Probe, path, new FileInfo(path).Length,
                    DateTimeOffset.UtcNow, Path.ChangeExtension(path, null) + ".manifest.json"), CancellationToken.None));
            }
        }

        var environment = new Dictionary<string, string>
        {
            ["Ingest__Kind"] = "redis",
            ["Ingest__Redis__Configuration"] = redis.Configuration,
            ["Ingest__Redis__Stream"] = stream,
            ["Ingest__LeaseTime"] = Lease.ToString("c", CultureInfo.InvariantCulture),
            ["Aggregator__Schedules__Parse"] = "* * * * * ?",
            ["Aggregator__Schedules__Aggregate"] = "0 0 0 1 1 ? 2099",
            ["Aggregator__Schedules__Cleanup"] = "0 0 0 1 1 ? 2099",
            ["Aggregator__RowGroupSize"] = "65536",
        };
        var workers = new[] { "w1", "w2" }
            .Select(name => ChildProcess.Start(name, ["aggregate", "run", "--data-dir", w.DataDirectory, "--worker-name", name], environment, workingDirectory: w.Root))
            .ToList();
        try
        {
            var packets = Path.Combine(w.LakeDirectory, LakeLayout.Packets);
            var verified = new HashSet<string>(StringComparer.Ordinal);
            ChildProcess? killed = null;
            string? killedSha = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(180);
            using var db = w.DuckDb();
            while (verified.Count < frames.Count)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {verified.Count} of {frames.Count} captures parsed\n" + string.Join("\n", workers.Select(x => x.Name + ":\n" + x.Output)));
                Assert.DoesNotContain(workers, x => x != killed && x.HasExited);

                // Whatever is visible is whole: a reader never meets a partial packets file.
                foreach (var file in WorkerLake.VisibleParquet(packets))
                {
                    var sha = Path.GetFileNameWithoutExtension(file);
                    if (verified.Contains(sha))
                        continue;
                    Assert.True(frames.ContainsKey(sha), "unexpected file " + file);
                    Assert.Equal(frames[sha], Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(file)})"));
                    verified.Add(sha);
                }

                if (killed is null && FindWriter(w, packets, workers) is var (writer, sha2))
                {
                    writer.KillNow();
                    killed = writer;
                    killedSha = sha2;
                    output.WriteLine($"killed {writer.Name} (pid {writer.Id}) while it wrote {sha2}");
                    // Caught in the middle: the file is not in place, and stays invisible until the other worker writes it.
                    Assert.False(File.Exists(w.Lake.PerCaptureFile(LakeLayout.Packets, DateOnly.Parse(Date, CultureInfo.InvariantCulture), Probe, sha2)));
                }

                await Task.Delay(5);
            }

            Assert.NotNull(killed);
            var survivor = workers.Single(x => x != killed);

            // The ledger: every capture parsed once, with its frame count, and the killed worker's capture by the survivor.
            // A file is published before the ledger records it, so the last record may lag the last file a little.
            var ledger = new RunLedger(w.Ledger.Path, TimeProvider.System);
            while (ledger.CaptureCounts()[RunLedger.Parsed] < frames.Count)
            {
                Assert.True(DateTime.UtcNow < deadline, "the ledger did not record every capture:\n" + survivor.Output);
                await Task.Delay(50);
            }
            var captures = ledger.Captures();
            Assert.Equal(frames.Count, captures.Count);
            Assert.All(captures, c =>
            {
                Assert.Equal(RunLedger.Parsed, c.Status);
                Assert.Equal(frames[c.Sha256], c.Frames);
            });
            using (var connection = new SqliteConnection($"Data Source={ledger.Path};Mode=ReadOnly;Pooling=false"))
            {
                connection.Open();
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT r.pid FROM captures c JOIN runs r ON r.run_id = c.last_run_id WHERE c.sha256 = $sha";
                command.Parameters.AddWithValue("$sha", killedSha);
                Assert.Equal((long)survivor.Id, (long)command.ExecuteScalar()!);

                // Exactly once: each packets file was published by one run only.
                command.CommandText = "SELECT path, count(*) FROM run_files WHERE direction = 'output' AND path LIKE '%/packets/%' GROUP BY path";
                command.Parameters.Clear();
                var published = new Dictionary<string, long>(StringComparer.Ordinal);
                using (var reader = command.ExecuteReader())
                {
                    while (reader.Read())
                        published[Path.GetFileNameWithoutExtension(reader.GetString(0))] = reader.GetInt64(1);
                }
                Assert.Equal(frames.Keys.Order(), published.Keys.Order());
                Assert.All(published.Values, n => Assert.Equal(1, n));
            }

            // The lake holds exactly one visible file per capture; the queue is empty, nothing pending, nothing dead.
            Assert.Equal(frames.Keys.Order(), WorkerLake.VisibleParquet(packets).Select(Path.GetFileNameWithoutExtension).Order());
            var redisDb = redis.Connection.GetDatabase();
            Assert.Equal(0, await redisDb.StreamLengthAsync(stream));
            Assert.Equal(0, (await redisDb.StreamPendingAsync(stream, "aggregator")).PendingMessageCount);
            Assert.Equal(0, await redisDb.StreamLengthAsync(stream + ":dead"));
        }
        finally
        {
            foreach (var worker in workers)
            {
                output.WriteLine($"--- {worker.Name} (pid {worker.Id}) ---");
                output.WriteLine(worker.Output);
                worker.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_scheduler_store_fails_with_a_clear_error()
    {
        using var w = new Workspace();
        var environment = new Dictionary<string, string>
        {
            ["Ingest__Kind"] = "redis",
            ["Ingest__Redis__Configuration"] = redis.Configuration,
            ["Ingest__Redis__Stream"] = "survey6:test:" + Guid.NewGuid().ToString("N")[..12],
        };
        string[] arguments = ["aggregate", "run", "--data-dir", w.DataDirectory, "--worker-name", "same"];
        using var first = ChildProcess.Start("first", arguments, environment, workingDirectory: w.Root);
        var lockFile = Path.Combine(w.DataDirectory, "aggregator-scheduler-same.db.lock");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(lockFile))
        {
            Assert.True(DateTime.UtcNow < deadline, "the first worker did not start:\n" + first.Output);
            Assert.False(first.HasExited, first.Output);
            await Task.Delay(100);
        }

        using var second = ChildProcess.Start("second", arguments, environment, workingDirectory: w.Root);
        Assert.True(await second.WaitForExitAsync(TimeSpan.FromSeconds(60)), "the second worker kept running");
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("Another aggregator daemon uses the scheduler store", second.Output, StringComparison.Ordinal);
        Assert.Contains("--worker-name", second.Output, StringComparison.Ordinal);
        Assert.False(first.HasExited, first.Output);
    }

    /// <summary>A worker in the middle of writing a packets file, found by its hidden temp file and the run that owns it.</summary>
    private static (ChildProcess Worker, string Sha)? FindWriter(Workspace w, string packets, List<ChildProcess> workers)
    {
        foreach (var (sha, runId) in WorkerLake.PacketsFilesBegun(packets))
        {
            using var connection = new SqliteConnection($"Data Source={w.Ledger.Path};Mode=ReadOnly;Pooling=false");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT pid FROM runs WHERE run_id = $id";
            command.Parameters.AddWithValue("$id", runId);
            if (command.ExecuteScalar() is long pid && workers.FirstOrDefault(x => x.Id == pid) is { } worker)
                return (worker, sha);
        }
        return null;
    }

    /// <summary>A pcapng of <paramref name="count"/> IPv6/UDP frames, stored as the C&amp;C stores captures; returns its SHA-256.</summary>
    private static string StoreLargeCapture(Workspace w, int seed, int count) =>
        w.Store(WorkerLake.UdpCapture(seed, count, CaptureFile.At(10, 0, 0) + seed, int.MaxValue), Probe, Date);
}

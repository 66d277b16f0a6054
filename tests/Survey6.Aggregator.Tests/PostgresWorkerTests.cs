using System.Globalization;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Testbed;
using Survey6.Ingest;
using Survey6.Testing;
using Xunit.Abstractions;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// Workers on several hosts, on real engines: a redis-server and a PostgreSQL cluster started here, and two
/// <c>survey6 aggregate run</c> processes that share nothing but the queue, the ledger's database and the two folders
/// a shared file system would give them (the stored captures and the lake). Each has its own data folder, so its own
/// <c>aggregator.lock</c>: an flock could not serialise them, only PostgreSQL can. One worker is SIGKILLed while it
/// writes a packets file; every capture still ends in the lake once, each capture's partials are computed once, the
/// date's merge runs once per change, and the datasets equal those of one worker alone.
/// </summary>
[Collection(RedisCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class PostgresWorkerTests(RedisServerFixture redis, PostgresServerFixture postgres, ITestOutputHelper output)
    : IClassFixture<PostgresServerFixture>
{
    private const string Date = "2024-05-01";
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task Two_workers_on_Redis_and_PostgreSQL_process_a_day_once_with_one_SIGKILLed_mid_capture()
    {
        using var shared = new Workspace();
        var ledger = postgres.CreateDatabase();
        var stream = "survey6:test:" + Guid.NewGuid().ToString("N")[..12];

        // Two probes, three captures each, apart in time (so no capture's duplicate check depends on another's), and big
        // enough that writing one packets file takes a while.
        var frames = new Dictionary<string, long>(StringComparer.Ordinal);
        var contents = new List<(string Probe, byte[] Content)>();
        for (int i = 0; i < 6; i++)
        {
            var probe = i % 2 == 0 ? "probe-a" : "probe-b";
            var content = LargeCapture(i, 150_000 + (i * 10_000));
            var sha = shared.Store(content, probe, Date);
            frames[sha] = 150_000 + (i * 10_000);
            contents.Add((probe, content));
        }

        var ingest = Options.Create(new IngestOptions
        {
            Kind = IngestQueueKind.Redis,
            LeaseTime = Lease,
            Redis = new RedisIngestOptions { Configuration = redis.Configuration, Stream = stream },
        });
        using (var producer = new RedisStreamsIngestQueue(redis.Connection, ingest, TimeProvider.System))
        {
            foreach (var (probe, content) in contents)
            {
                var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
                var path = shared.CapturePath(sha, probe, Date);
                Assert.True(await producer.EnqueueAsync(new CaptureEnqueued(sha, probe, path, content.Length,
                    DateTimeOffset.UtcNow, Path.ChangeExtension(path, null) + ".manifest.json"), CancellationToken.None));
            }
        }

        // The second "host": its own data folder, with the store and the lake mounted from the first.
        var otherHost = Path.Combine(shared.Root, "host-2");
        Directory.CreateDirectory(otherHost);
        Directory.CreateDirectory(shared.LakeDirectory);
        File.CreateSymbolicLink(Path.Combine(otherHost, "captures"), Path.Combine(shared.DataDirectory, "captures"));
        var dataFolders = new Dictionary<string, string>(StringComparer.Ordinal) { ["w1"] = shared.DataDirectory, ["w2"] = otherHost };

        var environment = new Dictionary<string, string>
        {
            ["Ingest__Kind"] = "redis",
            ["Ingest__Redis__Configuration"] = redis.Configuration,
            ["Ingest__Redis__Stream"] = stream,
            ["Ingest__LeaseTime"] = Lease.ToString("c", CultureInfo.InvariantCulture),
            ["Aggregator__Ledger__ConnectionString"] = ledger,
            ["Aggregator__Schedules__Parse"] = "* * * * * ?",
            ["Aggregator__Schedules__Aggregate"] = "0/3 * * * * ?",
            ["Aggregator__Schedules__Cleanup"] = "0 0 0 1 1 ? 2099",
            ["Aggregator__RowGroupSize"] = "65536",
            ["Aggregator__LockWait"] = "00:00:02",
        };
        ChildProcess StartWorker(string name) => ChildProcess.Start(name,
            ["aggregate", "run", "--data-dir", dataFolders[name], "--lake", shared.LakeDirectory, "--worker-name", name], environment, workingDirectory: shared.Root);
        var workers = new List<ChildProcess> { StartWorker("w1"), StartWorker("w2") };
        try
        {
            var packets = Path.Combine(shared.LakeDirectory, LakeLayout.Packets);
            var verified = new HashSet<string>(StringComparer.Ordinal);
            ChildProcess? killed = null;
            string? killedSha = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(20);
            using var db = shared.DuckDb();
            while (verified.Count < frames.Count)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {verified.Count} of {frames.Count} captures parsed\n" + Outputs(workers));
                Assert.DoesNotContain(workers, x => x != killed && x.HasExited);
                foreach (var file in WorkerLake.VisibleParquet(packets))
                {
                    var sha = Path.GetFileNameWithoutExtension(file);
                    if (verified.Contains(sha))
                        continue;
                    Assert.True(frames.ContainsKey(sha), "unexpected file " + file);
                    Assert.Equal(frames[sha], Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(file)})"));
                    verified.Add(sha);
                }

                if (killed is null && FindWriter(ledger, packets, workers) is var (writer, sha2))
                {
                    writer.KillNow();
                    killed = writer;
                    killedSha = sha2;
                    output.WriteLine($"killed {writer.Name} (pid {writer.Id}) while it wrote {sha2}");
                    Assert.False(File.Exists(shared.Lake.PerCaptureFile(LakeLayout.Packets, DateOnly.Parse(Date, CultureInfo.InvariantCulture), ProbeOf(contents, sha2), sha2)));
                }
                await Task.Delay(5);
            }
            Assert.NotNull(killed);
            var survivor = workers.Single(x => x != killed);

            // The killed worker comes back (its scheduler store is free again), so that two workers race for the merges.
            var restarted = StartWorker(killed.Name);
            workers.Add(restarted);

            // Positive signal that the day is done: the date's last merge read all six packets files, and after it each
            // live worker finished an aggregate run of its own (which found the date unchanged).
            await using var pg = new NpgsqlConnection(ledger);
            await pg.OpenAsync();
            string? builtBy = null;
            while (true)
            {
                Assert.True(DateTime.UtcNow < deadline, "the date was not merged over every capture, or the workers did not run again\n" + Outputs(workers));
                Assert.False(survivor.HasExited || restarted.HasExited, Outputs(workers));
                var partition = Rows(pg, "SELECT inputs, built_at, run_id FROM partitions WHERE date = @d", ("d", Date)).SingleOrDefault();
                if (partition is [int and 6 or long and 6, string builtAt, string runId])
                {
                    builtBy = runId;
                    var after = Rows(pg, "SELECT DISTINCT pid FROM runs WHERE stage = 'aggregate' AND status = 'succeeded' AND started_at > @at",
                        ("at", builtAt)).Select(r => Convert.ToInt32(r[0], CultureInfo.InvariantCulture)).ToHashSet();
                    if (after.Contains(survivor.Id) && after.Contains(restarted.Id))
                        break;
                }
                await Task.Delay(200);
            }

            // Every capture parsed once, with its frame count; the killed worker's capture by another worker.
            var captures = Rows(pg, "SELECT sha256, status, frames, last_run_id FROM captures");
            Assert.Equal(frames.Keys.Order(), captures.Select(c => (string)c[0]!).Order());
            Assert.All(captures, c =>
            {
                Assert.Equal(RunLedger.Parsed, c[1]);
                Assert.Equal(frames[(string)c[0]!], Convert.ToInt64(c[2], CultureInfo.InvariantCulture));
            });
            var killedBy = Rows(pg, "SELECT r.pid FROM captures c JOIN runs r ON r.run_id = c.last_run_id WHERE c.sha256 = @s", ("s", killedSha!)).Single()[0];
            Assert.NotEqual(killed.Id, Convert.ToInt32(killedBy, CultureInfo.InvariantCulture));

            // Exactly once: each packets file published by one parse run, and read for its partials by one aggregate run.
            var published = Rows(pg, "SELECT path, count(*) FROM run_files WHERE direction = 'output' AND path LIKE '%/packets/%' GROUP BY path");
            Assert.Equal(frames.Keys.Order(), published.Select(p => Path.GetFileNameWithoutExtension((string)p[0]!)).Order());
            Assert.All(published, p => Assert.Equal(1L, Convert.ToInt64(p[1], CultureInfo.InvariantCulture)));
            var partialsRead = Rows(pg, """
                SELECT f.path, count(*) FROM run_files f JOIN runs r USING (run_id)
                WHERE r.stage = 'aggregate' AND f.direction = 'input' AND f.path LIKE '%/packets/%' GROUP BY f.path
                """);
            Assert.Equal(frames.Keys.Order(), partialsRead.Select(p => Path.GetFileNameWithoutExtension((string)p[0]!)).Order());
            Assert.All(partialsRead, p => Assert.Equal(1L, Convert.ToInt64(p[1], CultureInfo.InvariantCulture)));

            // The merge ran once per change: every merge of the date read a different set of partials (more captures
            // than the one before), the last one all six, and no aggregate runs overlapped in time.
            var merges = Rows(pg, """
                SELECT r.run_id, r.started_at, r.finished_at FROM runs r
                WHERE r.stage = 'aggregate' AND EXISTS (SELECT 1 FROM run_files f WHERE f.run_id = r.run_id AND f.direction = 'output')
                ORDER BY r.started_at
                """);
            Assert.InRange(merges.Count, 1, frames.Count);
            Assert.Equal(builtBy, merges[^1][0]);
            var aggregateRuns = Rows(pg, "SELECT started_at, finished_at FROM runs WHERE stage = 'aggregate' AND finished_at IS NOT NULL ORDER BY started_at");
            for (int i = 1; i < aggregateRuns.Count; i++)
                Assert.True(string.CompareOrdinal((string)aggregateRuns[i - 1][1]!, (string)aggregateRuns[i][0]!) <= 0, "two aggregate runs overlapped");
            foreach (var merge in merges.Skip(1).Select((m, i) => (Previous: merges[i], Current: m)))
            {
                // A merge after the first read at least one packets file the earlier merges had not.
                var newInputs = Rows(pg, "SELECT count(*) FROM run_files WHERE run_id = @r AND direction = 'input'", ("r", (string)merge.Current[0]!)).Single()[0];
                Assert.True(Convert.ToInt64(newInputs, CultureInfo.InvariantCulture) > 0, $"merge {merge.Current[0]} read no new capture");
            }

            // The datasets are those of one worker alone, over the same captures, with the embedded ledger.
            using var alone = new Workspace();
            foreach (var (probe, content) in contents)
                alone.Store(content, probe, Date);
            await alone.RunAsync(AggregatorStage.Parse);
            await alone.RunAsync(AggregatorStage.Aggregate);
            var expected = IncrementalTests.Snapshot(alone);
            var actual = IncrementalTests.Snapshot(shared);
            Assert.Equal(expected.Keys, actual.Keys);
            foreach (var (dataset, rows) in expected)
                Assert.True(rows == actual[dataset], $"{dataset} differs from a single worker's");
            Assert.Equal(frames.Values.Sum(), Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(Path.Combine(packets, "*", "*", "*.parquet"))})"));

            // Nothing left on the queue.
            var redisDb = redis.Connection.GetDatabase();
            Assert.Equal(0, await redisDb.StreamLengthAsync(stream));
            Assert.Equal(0, (await redisDb.StreamPendingAsync(stream, "aggregator")).PendingMessageCount);
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
    public void A_ledger_connection_string_that_is_not_one_or_a_server_that_is_not_there_is_refused_with_a_clear_error()
    {
        var bad = new AggregatorOptionsValidator().Validate(null, new AggregatorOptions { Ledger = { ConnectionString = "Hots=db;Database=survey6;Password=secret" } });
        Assert.True(bad.Failed);
        Assert.Contains("Aggregator:Ledger:ConnectionString is not a PostgreSQL connection string", bad.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", bad.FailureMessage, StringComparison.Ordinal);

        // Nothing listens on the socket folder's port 1.
        var unreachable = new NpgsqlConnectionStringBuilder(postgres.ConnectionString("postgres")) { Port = 1, Password = "secret", Timeout = 5 }.ConnectionString;
        var error = Assert.Throws<LedgerUnavailableException>(() => new PostgresRunLedger(unreachable, TimeProvider.System));
        Assert.StartsWith($"The ledger's PostgreSQL postgresql://{postgres.Root}:1/postgres (Aggregator:Ledger:ConnectionString) cannot be used:", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Workers_starting_together_on_an_empty_database_apply_each_schema_step_once()
    {
        var connectionString = postgres.CreateDatabase();
        var ledgers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => new PostgresRunLedger(connectionString, TimeProvider.System))));
        Assert.All(ledgers, l => Assert.Equal(LedgerMigrations.PostgresSteps.Count, l.SchemaVersion));
        await using var pg = new NpgsqlConnection(connectionString);
        await pg.OpenAsync();
        Assert.Equal(LedgerMigrations.PostgresSteps.Select(s => (object?)s.Version), Rows(pg, "SELECT version FROM schema_version ORDER BY version").Select(r => r[0]));

        // The statements both stores share, on PostgreSQL.
        var ledger = ledgers[0];
        var run = ledger.StartRun("parse");
        ledger.RecordCapture(new Sources.PendingCapture(new string('a', 64), "probe-a", new DateOnly(2024, 5, 1), "/c", null), RunLedger.Parsed, 1, null, 42, "/p", null, run);
        ledger.AddRunFile(run, "output", "/p", 42);
        ledger.AddRunFile(run, "output", "/p", 43);
        ledger.FinishRun(run, "succeeded", 1, 1, 42, null);
        Assert.Equal(42L, ledger.GetCapture(new string('a', 64))!.Frames);
        Assert.Equal(new[] { ("output", "/p", (long?)43) }, ledger.RunFiles(run));
        Assert.Equal(1, ledger.CaptureCounts()[RunLedger.Parsed]);
        Assert.Equal("succeeded", ledger.RecentRuns(1).Single().Status);

        // The C&C's data page reads it there when its configuration names the database; nothing there yet, or no
        // server, is no view rather than an error page.
        var layout = new Survey6.Data.DataLayout(postgres.Root);
        var view = new LedgerPipelineViewSource(layout, TimeProvider.System, connectionString).Read();
        Assert.NotNull(view);
        Assert.Equal(1, view.CapturesByStatus[RunLedger.Parsed]);
        Assert.Equal("parse", Assert.Single(view.Stages).Stage);
        Assert.Null(new LedgerPipelineViewSource(layout, TimeProvider.System, postgres.CreateDatabase()).Read());
        var unreachable = new NpgsqlConnectionStringBuilder(connectionString) { Port = 1, Timeout = 5 }.ConnectionString;
        Assert.Null(new LedgerPipelineViewSource(layout, TimeProvider.System, unreachable).Read());
    }

    [Fact]
    public async Task The_stage_lock_in_PostgreSQL_is_shared_by_parse_runs_and_exclusive_otherwise_and_dies_with_its_session()
    {
        var locks = new PostgresStageLocks(postgres.CreateDatabase());
        using (var a = await locks.TryAcquireAsync(shared: true, TimeSpan.Zero, CancellationToken.None))
        using (var b = await locks.TryAcquireAsync(shared: true, TimeSpan.Zero, CancellationToken.None))
        {
            Assert.NotNull(a);
            Assert.NotNull(b);
            Assert.Null(await locks.TryAcquireAsync(shared: false, TimeSpan.FromMilliseconds(300), CancellationToken.None));
        }
        var exclusive = await locks.TryAcquireAsync(shared: false, TimeSpan.Zero, CancellationToken.None);
        Assert.NotNull(exclusive);
        Assert.Null(await locks.TryAcquireAsync(shared: true, TimeSpan.FromMilliseconds(300), CancellationToken.None));
        exclusive.Dispose();
        using var again = await locks.TryAcquireAsync(shared: false, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.NotNull(again);
    }

    private static string ProbeOf(List<(string Probe, byte[] Content)> contents, string sha) =>
        contents.Single(c => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(c.Content)) == sha).Probe;

    private static string Outputs(IEnumerable<ChildProcess> workers) => string.Join("\n", workers.Select(x => x.Name + ":\n" + x.Output));

    private static List<object?[]> Rows(NpgsqlConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (int i = 0; i < row.Length; i++)
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>A worker in the middle of writing a packets file: its hidden temp file, still before its first row group, and the run that owns it in the ledger.</summary>
    private static (ChildProcess Worker, string Sha)? FindWriter(string ledger, string packets, List<ChildProcess> workers)
    {
        foreach (var (sha, runId) in WorkerLake.PacketsFilesBegun(packets))
        {
            using var connection = new NpgsqlConnection(ledger);
            connection.Open();
            if (Rows(connection, "SELECT pid FROM runs WHERE run_id = @id AND status = 'running'", ("id", runId)).SingleOrDefault() is [{ } pid]
                && workers.FirstOrDefault(x => x.Id == Convert.ToInt32(pid, CultureInfo.InvariantCulture)) is { } worker)
                return (worker, sha);
        }
        return null;
    }

    /// <summary>A pcapng of <paramref name="count"/> IPv6/UDP frames, 10 s after the previous seed's, so captures of a probe never overlap.</summary>
    private static byte[] LargeCapture(int seed, int count) =>
        WorkerLake.UdpCapture(seed, count, CaptureFile.At(10, 0, 0) + (seed * 10_000_000_000L), 4096);
}

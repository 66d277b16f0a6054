using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Survey6.Ingest.Tests;

public sealed class SqliteIngestQueueTests : IngestQueueContractTests
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("survey6-ingest-");

    // Starts at the wall clock so that child processes, which use the real clock, agree with it.
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    private string DbPath => Path.Combine(_dir.FullName, "queue", "ingest.db");

    protected override TimeSpan ShortLease => TimeSpan.FromSeconds(30);

    protected override TimeSpan RetryDelay => TimeSpan.FromMinutes(2);

    protected override TimeProvider Time => _time;

    protected override IIngestQueue NewQueue(TimeSpan leaseTime, int maxAttempts) =>
        new SqliteIngestQueue(Options(leaseTime, maxAttempts), _time);

    protected override Task AdvanceAsync(TimeSpan by)
    {
        _time.Advance(by);
        return Task.CompletedTask;
    }

    protected override IEnumerable<string> ChildSettings(TimeSpan leaseTime, int maxAttempts) =>
    [
        "Ingest:Kind=sqlite",
        $"Ingest:Sqlite:Path={DbPath}",
        $"Ingest:LeaseTime={leaseTime:c}",
        $"Ingest:MaxAttempts={maxAttempts}",
    ];

    protected override void CatchUpWithWallClock()
    {
        var now = DateTimeOffset.UtcNow;
        if (now > _time.GetUtcNow())
        {
            _time.SetUtcNow(now);
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task A_queue_file_made_before_schema_versions_is_adopted_and_keeps_its_items()
    {
        // What earlier releases left: the same tables, created IF NOT EXISTS, no schema_version, one item waiting.
        var item = TestItems.Capture(1); // odd: no manifest
        Directory.CreateDirectory(Path.GetDirectoryName(DbPath)!);
        using (var connection = new SqliteConnection($"Data Source={DbPath};Pooling=false"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode = WAL;" + IngestMigrations.Steps[0].Sql +
                "INSERT INTO ingest_queue (sha256, probe_id, stored_path, size_bytes, received_at, manifest_path, enqueued_at, visible_at) " +
                $"VALUES ('{item.Sha256}', '{item.ProbeId}', '{item.StoredPath}', {item.SizeBytes}, '{Wire.FormatTime(item.ReceivedAt)}', NULL, 0, 0)";
            command.ExecuteNonQuery();
        }

        using var queue = new SqliteIngestQueue(Options(LongLease, 5), _time);
        var lease = await queue.TryDequeueAsync("c1", CancellationToken.None);

        Assert.Equal(item, lease?.Item);
        using var check = new SqliteConnection($"Data Source={DbPath};Mode=ReadOnly;Pooling=false");
        check.Open();
        using var version = check.CreateCommand();
        version.CommandText = "SELECT group_concat(version) FROM schema_version";
        Assert.Equal("1", version.ExecuteScalar());
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void A_new_queue_file_and_its_missing_folder_are_owner_only()
    {
        using var queue = new SqliteIngestQueue(Options(LongLease, 5), _time);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(DbPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(DbPath)!));
    }

    [Fact]
    public async Task Processes_claiming_from_one_file_at_once_never_get_the_same_item()
    {
        const int Items = 150;
        // The real clock here: the children use it too.
        using var queue = new SqliteIngestQueue(Options(LongLease, 5), TimeProvider.System);
        for (var i = 0; i < Items; i++)
        {
            await queue.EnqueueAsync(TestItems.Capture(i), Ct);
        }

        using var a = ChildProcess.Start("drain", "process-a", ChildSettings(LongLease, 5));
        using var b = ChildProcess.Start("drain", "process-b", ChildSettings(LongLease, 5));
        Assert.Equal("READY", await a.ReadLineAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("READY", await b.ReadLineAsync(TimeSpan.FromSeconds(20)));
        await a.WriteLineAsync("GO");
        await b.WriteLineAsync("GO");

        // Both processes claim at once, and each holds its item while this one claims too.
        var holdA = await a.ReadLineAsync(TimeSpan.FromSeconds(20));
        var holdB = await b.ReadLineAsync(TimeSpan.FromSeconds(20));
        var mine = await queue.TryDequeueAsync("parent", Ct);
        Assert.Matches("^HOLD [0-9a-f]{64}$", holdA);
        Assert.Matches("^HOLD [0-9a-f]{64}$", holdB);
        Assert.NotNull(mine);
        Assert.Equal(3, new[] { holdA[5..], holdB[5..], mine.Item.Sha256 }.Distinct().Count());
        Assert.True(await queue.AckAsync(mine, Ct));

        // Then everyone drains the rest together: the children and two consumers here.
        await a.WriteLineAsync("GO");
        await b.WriteLineAsync("GO");
        var parentDrain = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            var got = new List<string>();
            while (await queue.TryDequeueAsync($"parent-{w}", Ct) is { } lease)
            {
                await Task.Delay(Program.WorkTime);
                got.Add($"{(await queue.AckAsync(lease, Ct) ? "GOT" : "LOST")} {lease.Item.Sha256} {lease.Attempt}");
            }
            return got;
        })).ToArray();
        var linesA = await a.ReadToEndAsync(TimeSpan.FromSeconds(20));
        var linesB = await b.ReadToEndAsync(TimeSpan.FromSeconds(20));
        var parent = (await Task.WhenAll(parentDrain)).SelectMany(l => l).Append($"GOT {mine.Item.Sha256} 1").ToList();
        Assert.Equal(0, await a.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, await b.WaitForExitAsync(TimeSpan.FromSeconds(10)));

        var all = linesA.Concat(linesB).Where(l => l != "DONE").Concat(parent).ToList();
        Assert.All(all, l => Assert.Matches("^GOT [0-9a-f]{64} 1$", l));
        Assert.Equal(Items, all.Count);
        Assert.Equal(Items, all.Distinct().Count());
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await queue.GetStatsAsync(Ct));
    }

    [Fact]
    public async Task Queue_and_leases_survive_a_restart()
    {
        var item1 = TestItems.Capture(1);
        var item2 = TestItems.Capture(2);
        IngestLease held;
        using (var before = new SqliteIngestQueue(Options(ShortLease, 5), _time))
        {
            await before.EnqueueAsync(item1, Ct);
            await before.EnqueueAsync(item2, Ct);
            held = (await before.TryDequeueAsync("worker-a", Ct))!;
        }
        SqliteConnection.ClearAllPools();

        using var after = new SqliteIngestQueue(Options(ShortLease, 5), _time);
        var stats = await after.GetStatsAsync(Ct);
        Assert.Equal((1, 1), (stats.Pending, stats.InFlight));
        Assert.Equal(item2, (await after.TryDequeueAsync("worker-b", Ct))?.Item);
        Assert.Null(await after.TryDequeueAsync("worker-b", Ct));

        _time.Advance(Past(ShortLease));
        var again = await after.TryDequeueAsync("worker-b", Ct);
        Assert.Equal(item1, again?.Item);
        Assert.Equal(2, again!.Attempt);
        Assert.False(await after.AckAsync(held, Ct));
    }

    [Fact]
    public async Task The_file_is_in_wal_mode()
    {
        using var queue = new SqliteIngestQueue(Options(LongLease, 5), _time);
        await queue.EnqueueAsync(TestItems.Capture(1), Ct);

        await using var connection = new SqliteConnection($"Data Source={queue.Path}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }

    private IOptions<IngestOptions> Options(TimeSpan leaseTime, int maxAttempts) =>
        Microsoft.Extensions.Options.Options.Create(new IngestOptions
        {
            Kind = IngestQueueKind.Sqlite,
            LeaseTime = leaseTime,
            MaxAttempts = maxAttempts,
            Sqlite = { Path = DbPath },
        });
}

using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Survey6.Server.Control;
using Survey6.Server.Diagnostics;
using Survey6.Server.Security;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>Heartbeats are acknowledged from memory and written in batches: nothing acknowledged is lost or invisible.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class HeartbeatWriterTests
{
    // The longest batch delay allowed, so an acknowledged heartbeat is still queued when the test looks.
    private static readonly Dictionary<string, string?> SlowWriter = new()
    {
        ["Server:Control:HeartbeatBatchDelay"] = "00:00:01",
        ["Server:Control:MinHeartbeatSpacing"] = "00:00:00",
    };

    [Fact]
    public async Task A_heartbeat_acknowledged_before_a_graceful_stop_is_on_disk_after_it()
    {
        var server = await ServerHarness.StartAsync(SlowWriter);
        try
        {
            var (response, certificate) = await server.JoinAsync(server.CreateToken());
            await using var stream = ProbeStream.Open(server, certificate);
            var at = server.Time.GetUtcNow();
            await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 4242));
            Assert.Equal(1, server.Get<HeartbeatWriter>().Pending); // acknowledged, not written yet

            await server.StopAsync();

            var database = new StateDatabase(Path.Combine(server.DataDirectory, "state.db"));
            using var connection = database.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT s.last_heartbeat_at, p.state, (SELECT SUM(heartbeats) FROM probe_minutes m WHERE m.probe_id = p.id)
                FROM probes p JOIN probe_status s ON s.probe_id = p.id WHERE p.id = $id
                """;
            command.Parameters.AddWithValue("$id", response.ProbeId);
            using var reader = command.ExecuteReader();
            Assert.True(reader.Read());
            Assert.Equal(DbTime.ToText(at), reader.GetString(0));
            Assert.Equal(ProbeStates.Healthy, reader.GetString(1));
            Assert.Equal(1, reader.GetInt64(2));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Queries_see_a_heartbeat_as_soon_as_it_is_acknowledged()
    {
        await using var server = await ServerHarness.StartAsync(SlowWriter);
        var (response, certificate) = await server.JoinAsync(server.CreateToken());
        await using var stream = ProbeStream.Open(server, certificate);
        var writer = server.Get<HeartbeatWriter>();

        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 1000));
        Assert.Equal(1, writer.Pending);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var health = (await server.Get<ProbeHealthQuery>().GetAsync(response.ProbeId))!;
        // The query had the writer flush at once instead of waiting out its batch delay.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"query took {clock.Elapsed}");
        Assert.Equal(0, writer.Pending);
        Assert.Equal(ProbeStates.Healthy, health.State);
        Assert.Equal(1000ul, health.LastHeartbeat!.Capture.Received);

        server.Time.Advance(TimeSpan.FromSeconds(10));
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 3000));
        var listed = Assert.Single(await server.Get<ProbeHealthQuery>().ListAsync(), p => p.ProbeId == response.ProbeId);
        Assert.Equal(200, listed.Rates.PacketsPerSecond, 0);
        var minutes = await server.Get<ProbeHealthQuery>().HistoryAsync(response.ProbeId, server.Time.GetUtcNow().AddHours(-1), server.Time.GetUtcNow().AddHours(1));
        Assert.Equal(2, minutes.Sum(m => m.Heartbeats));
        Assert.True(server.Counters.Get(ControlCounters.HeartbeatBatches) >= 1);
        Assert.Equal(0, server.Counters.Get(ControlCounters.HeartbeatsDropped));
    }

    [Fact]
    public async Task Heartbeats_beyond_a_full_queue_are_acknowledged_and_counted_as_dropped_and_the_rest_are_stored()
    {
        await using var server = await ServerHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Server:Control:HeartbeatBatchDelay"] = "00:00:00",
            ["Server:Control:MaxHeartbeatBatch"] = "1",
            ["Server:Control:HeartbeatQueueCapacity"] = "100",
            ["Server:Control:MinHeartbeatSpacing"] = "00:00:00",
        });
        var (response, certificate) = await server.JoinAsync(server.CreateToken());
        await using var stream = ProbeStream.Open(server, certificate);
        var writer = server.Get<HeartbeatWriter>();

        // Another process holds state.db's write lock: the writer blocks on its first heartbeat and the queue fills.
        var database = server.Get<StateDatabase>();
        using (var hold = new WriteLock(database))
        {

            for (ulong i = 1; i <= 150; i++)
                await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: i * 10)); // every one is acknowledged
            hold.Release();
        }

        var dropped = server.Counters.Get(ControlCounters.HeartbeatsDropped);
        Assert.InRange(dropped, 49, 50); // 150 - 100 queued - the one (or none) the writer held
        Assert.Equal(HeartbeatWait.Stored, await writer.WaitUntilStoredAsync(CancellationToken.None));
        var health = server.Get<ProbeHealthQuery>();
        var minutes = await health.HistoryAsync(response.ProbeId, server.Time.GetUtcNow().AddHours(-1), server.Time.GetUtcNow().AddHours(1));
        Assert.Equal(150 - dropped, minutes.Sum(m => m.Heartbeats));
        // Counters are cumulative, so the stored heartbeats still account for every frame up to the last one kept.
        Assert.Equal(150, server.Counters.Get(ControlCounters.Heartbeats));
        Assert.Equal(ProbeStates.Healthy, (await health.GetAsync(response.ProbeId))!.State);
    }

    [Fact]
    public async Task An_api_read_right_after_an_acknowledged_heartbeat_sees_it()
    {
        await using var server = await ServerHarness.StartAsync(SlowWriter);
        using var api = server.Http(server.CreateApiToken());
        var (response, certificate) = await server.JoinAsync(server.CreateToken());
        await using var stream = ProbeStream.Open(server, certificate);
        var writer = server.Get<HeartbeatWriter>();

        var at = server.Time.GetUtcNow();
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 777));
        Assert.Equal(1, writer.Pending); // acknowledged; the writer would sit on it for a second

        // Every read of the JSON API awaits the writer, so each one sees the heartbeat.
        var detail = await api.GetOkAsync("/api/v1/probes/" + response.ProbeId);
        Assert.Equal(ProbeStates.Healthy, detail.GetProperty("state").GetString());
        Assert.Equal(at, detail.GetProperty("last_heartbeat").GetDateTimeOffset(), TimeSpan.FromMilliseconds(1));
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 778));
        var listed = (await api.GetOkAsync("/api/v1/probes")).GetProperty("items").EnumerateArray().Single(p => p.GetProperty("id").GetString() == response.ProbeId);
        Assert.Equal(ProbeStates.Healthy, listed.GetProperty("state").GetString());
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 779));
        var minutes = (await api.GetOkAsync($"/api/v1/probes/{response.ProbeId}/minutes")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, minutes.Sum(m => m.GetProperty("heartbeats").GetInt32()));
        Assert.Equal(0, writer.Pending);
    }

    [Fact]
    public async Task A_wait_with_a_cancelled_token_or_for_a_stopped_writer_ends_with_a_clear_result()
    {
        await using var server = await ServerHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Server:Control:HeartbeatBatchDelay"] = "00:00:00",
            ["Server:Control:MinHeartbeatSpacing"] = "00:00:00",
        });
        var (response, certificate) = await server.JoinAsync(server.CreateToken());
        await using var stream = ProbeStream.Open(server, certificate);
        var writer = server.Get<HeartbeatWriter>();
        var query = server.Get<ProbeHealthQuery>();

        // Another process holds state.db's write lock (well under its 30 s busy timeout): the writer cannot store the heartbeat.
        var database = server.Get<StateDatabase>();
        using (var hold = new WriteLock(database))
        {

            await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 10));
            Assert.Equal(1, writer.Pending);

            // A cancelled token ends the wait (and the read that awaits it) with OperationCanceledException, already cancelled or later.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer.WaitUntilStoredAsync(new CancellationToken(canceled: true)).AsTask());
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => query.GetAsync(response.ProbeId, new CancellationToken(canceled: true)).AsTask());
            using (var cancel = new CancellationTokenSource())
            {
                var waiting = query.ListAsync(cancel.Token).AsTask();
                await cancel.CancelAsync();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(ProbeStream.Wait));
            }

            // A timeout says so instead of pretending the heartbeat is stored.
            Assert.Equal(HeartbeatWait.TimedOut, await writer.WaitUntilStoredAsync(CancellationToken.None, TimeSpan.FromMilliseconds(50)));
            Assert.Equal(1, writer.Pending);
            hold.Release();
        }

        Assert.Equal(HeartbeatWait.Stored, await writer.WaitUntilStoredAsync(CancellationToken.None));
        Assert.Equal(10ul, (await query.GetAsync(response.ProbeId))!.LastHeartbeat!.Capture.Received);

        // A writer that ends with heartbeats queued (here: stopped before it ever ran) answers at once that nothing will store them.
        var stopped = new HeartbeatWriter(
            database, server.Get<IOptions<ControlOptions>>(), server.Get<ProbeHealthEvaluator>(), server.Get<ProbeRevocations>(),
            server.Get<ProbeConnections>(), server.Get<ServerCounters>(), NullLogger<HeartbeatWriter>.Instance);
        Assert.True(stopped.Enqueue(new PendingHeartbeat(response.ProbeId, ProbeStream.Healthy(server, received: 20), server.Time.GetUtcNow())));
        stopped.CompleteWriting();
        Assert.Equal(HeartbeatWait.WriterStopped, await stopped.WaitUntilStoredAsync(CancellationToken.None).AsTask().WaitAsync(ProbeStream.Wait));
        Assert.False(stopped.Enqueue(new PendingHeartbeat(response.ProbeId, ProbeStream.Healthy(server, received: 30), server.Time.GetUtcNow())));

        // The server's own writer, stopped gracefully, stored everything: a wait and a read after it answer at once.
        await server.StopAsync();
        Assert.Equal(HeartbeatWait.Stored, await writer.WaitUntilStoredAsync(CancellationToken.None).AsTask().WaitAsync(ProbeStream.Wait));
        Assert.False(writer.Enqueue(new PendingHeartbeat(response.ProbeId, ProbeStream.Healthy(server, received: 40), server.Time.GetUtcNow())));
        Assert.Equal(HeartbeatWait.Stored, await writer.WaitUntilStoredAsync(CancellationToken.None));
        Assert.Equal(10ul, (await query.GetAsync(response.ProbeId).AsTask().WaitAsync(ProbeStream.Wait))!.LastHeartbeat!.Capture.Received);
    }

    /// <summary>A write transaction on state.db, as another process would hold it: the writer blocks on it until released.</summary>
    private sealed class WriteLock : IDisposable
    {
        private readonly Microsoft.Data.Sqlite.SqliteConnection _connection;
        private readonly Microsoft.Data.Sqlite.SqliteTransaction _transaction;

        public WriteLock(StateDatabase database)
        {
            _connection = database.Open();
            _transaction = _connection.BeginTransaction();
            using var touch = _connection.CreateCommand();
            touch.Transaction = _transaction;
            touch.CommandText = "UPDATE settings SET value = value WHERE key = 'none'";
            touch.ExecuteNonQuery();
        }

        public void Release() => _transaction.Rollback();

        public void Dispose()
        {
            _transaction.Dispose();
            _connection.Dispose();
        }
    }
}

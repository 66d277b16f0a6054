using Survey6.Server.Control;
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
            Assert.Equal(1, server.Get<ProbeHealthTracker>().Pending); // acknowledged, not written yet

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
        var tracker = server.Get<ProbeHealthTracker>();

        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 1000));
        Assert.Equal(1, tracker.Pending);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var health = server.Get<ProbeHealthQuery>().Get(response.ProbeId)!;
        // The query had the writer flush at once instead of waiting out its batch delay.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"query took {clock.Elapsed}");
        Assert.Equal(0, tracker.Pending);
        Assert.Equal(ProbeStates.Healthy, health.State);
        Assert.Equal(1000ul, health.LastHeartbeat!.Capture.Received);

        server.Time.Advance(TimeSpan.FromSeconds(10));
        await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: 3000));
        var listed = Assert.Single(server.Get<ProbeHealthQuery>().List(), p => p.ProbeId == response.ProbeId);
        Assert.Equal(200, listed.Rates.PacketsPerSecond, 0);
        var minutes = server.Get<ProbeHealthQuery>().History(response.ProbeId, server.Time.GetUtcNow().AddHours(-1), server.Time.GetUtcNow().AddHours(1));
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
        var tracker = server.Get<ProbeHealthTracker>();

        // Another process holds state.db's write lock: the writer blocks on its first heartbeat and the queue fills.
        var database = server.Get<StateDatabase>();
        using (var blocker = database.Open())
        {
            using var hold = blocker.BeginTransaction();
            using (var touch = blocker.CreateCommand())
            {
                touch.Transaction = hold;
                touch.CommandText = "UPDATE settings SET value = value WHERE key = 'none'";
                touch.ExecuteNonQuery();
            }

            for (ulong i = 1; i <= 150; i++)
                await stream.HeartbeatAsync(ProbeStream.Healthy(server, received: i * 10)); // every one is acknowledged
            hold.Rollback();
        }

        var dropped = server.Counters.Get(ControlCounters.HeartbeatsDropped);
        Assert.InRange(dropped, 49, 50); // 150 - 100 queued - the one (or none) the writer held
        Assert.True(tracker.WaitUntilStored());
        var health = server.Get<ProbeHealthQuery>();
        var minutes = health.History(response.ProbeId, server.Time.GetUtcNow().AddHours(-1), server.Time.GetUtcNow().AddHours(1));
        Assert.Equal(150 - dropped, minutes.Sum(m => m.Heartbeats));
        // Counters are cumulative, so the stored heartbeats still account for every frame up to the last one kept.
        Assert.Equal(150, server.Counters.Get(ControlCounters.Heartbeats));
        Assert.Equal(ProbeStates.Healthy, health.Get(response.ProbeId)!.State);
    }
}

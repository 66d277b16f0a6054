using System.Collections.Concurrent;

namespace Survey6.Ingest.Tests;

/// <summary>
/// What every <see cref="IIngestQueue"/> must do. Each implementation runs the whole suite through a
/// subclass that says how to make a queue and how time passes for it.
/// </summary>
public abstract class IngestQueueContractTests : IDisposable
{
    private readonly List<IIngestQueue> _queues = [];

    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>A lease the tests let expire.</summary>
    protected abstract TimeSpan ShortLease { get; }

    /// <summary>A lease no test outlives.</summary>
    protected static TimeSpan LongLease => TimeSpan.FromMinutes(10);

    /// <summary>A retry delay the tests wait out; shorter than <see cref="LongLease"/>.</summary>
    protected abstract TimeSpan RetryDelay { get; }

    /// <summary>The clock the queue reports times with.</summary>
    protected abstract TimeProvider Time { get; }

    /// <summary>
    /// A new handle on this test's queue. Handles made in one test share the queue, like several
    /// processes would.
    /// </summary>
    protected abstract IIngestQueue NewQueue(TimeSpan leaseTime, int maxAttempts);

    /// <summary>Lets <paramref name="by"/> pass as the queue sees time.</summary>
    protected abstract Task AdvanceAsync(TimeSpan by);

    /// <summary>The <c>Ingest</c> settings with which a child process opens this test's queue.</summary>
    protected abstract IEnumerable<string> ChildSettings(TimeSpan leaseTime, int maxAttempts);

    /// <summary>Brings the queue's clock up to the wall clock a child process used.</summary>
    protected virtual void CatchUpWithWallClock()
    {
    }

    protected IIngestQueue CreateQueue(TimeSpan leaseTime, int maxAttempts = 5)
    {
        var queue = NewQueue(leaseTime, maxAttempts);
        _queues.Add(queue);
        return queue;
    }

    /// <summary>A little past <paramref name="t"/>, so that a deadline has surely passed.</summary>
    protected static TimeSpan Past(TimeSpan t) => t + TimeSpan.FromMilliseconds(250);

    public virtual void Dispose()
    {
        foreach (var q in _queues)
        {
            (q as IDisposable)?.Dispose();
        }
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Enqueue_dequeue_ack_delivers_the_item_once()
    {
        var queue = CreateQueue(LongLease);
        var item = TestItems.Capture(1);

        Assert.True(await queue.EnqueueAsync(item, Ct));
        var lease = await queue.TryDequeueAsync("worker-a", Ct);

        Assert.NotNull(lease);
        Assert.Equal(item, lease.Item);
        Assert.Equal(1, lease.Attempt);
        Assert.Equal("worker-a", lease.Consumer);
        Assert.False(string.IsNullOrEmpty(lease.DeliveryId));
        Assert.InRange(lease.LeaseExpiresAt - Time.GetUtcNow(), LongLease - TimeSpan.FromSeconds(5), LongLease);
        Assert.Null(await queue.TryDequeueAsync("worker-b", Ct));

        Assert.True(await queue.AckAsync(lease, Ct));
        Assert.Null(await queue.TryDequeueAsync("worker-a", Ct));
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await queue.GetStatsAsync(Ct));
    }

    [Fact]
    public async Task Item_without_manifest_round_trips()
    {
        var queue = CreateQueue(LongLease);
        var item = TestItems.Capture(3);
        Assert.Null(item.ManifestPath);

        await queue.EnqueueAsync(item, Ct);

        Assert.Equal(item, (await queue.TryDequeueAsync("w", Ct))?.Item);
    }

    [Fact]
    public async Task Enqueueing_a_queued_sha_again_adds_nothing()
    {
        var queue = CreateQueue(LongLease);
        var item = TestItems.Capture(1);

        Assert.True(await queue.EnqueueAsync(item, Ct));
        Assert.False(await queue.EnqueueAsync(item, Ct));
        Assert.False(await queue.EnqueueAsync(item with { ProbeId = "probe-b" }, Ct)); // same sha, same capture
        var lease = await queue.TryDequeueAsync("worker-a", Ct);
        Assert.NotNull(lease);

        Assert.False(await queue.EnqueueAsync(item, Ct)); // in flight counts as queued
        Assert.Null(await queue.TryDequeueAsync("worker-b", Ct));
        Assert.Equal(1, (await queue.GetStatsAsync(Ct)).InFlight);

        // Once done, the same capture may be queued again (re-ingest).
        Assert.True(await queue.AckAsync(lease, Ct));
        Assert.True(await queue.EnqueueAsync(item, Ct));
        var again = await queue.TryDequeueAsync("worker-b", Ct);
        Assert.Equal(1, again?.Attempt);
    }

    [Fact]
    public async Task A_renewed_lease_outlives_its_first_deadline_and_a_lost_one_cannot_be_renewed()
    {
        var queue = CreateQueue(ShortLease);
        var item = TestItems.Capture(1);
        Assert.True(await queue.EnqueueAsync(item, Ct));
        var lease = await queue.TryDequeueAsync("worker-a", Ct);
        Assert.NotNull(lease);

        await AdvanceAsync(ShortLease * 0.6);
        var renewed = await queue.RenewAsync(lease, Ct);
        Assert.NotNull(renewed);
        Assert.Equal(lease.DeliveryId, renewed.DeliveryId);
        Assert.Equal(1, renewed.Attempt);
        Assert.True(renewed.LeaseExpiresAt > lease.LeaseExpiresAt);

        // Past the first deadline, within the renewed one: still worker-a's.
        await AdvanceAsync(ShortLease * 0.6);
        Assert.Null(await queue.TryDequeueAsync("worker-b", Ct));
        Assert.Equal(1, (await queue.GetStatsAsync(Ct)).InFlight);
        Assert.True(await queue.AckAsync(renewed, Ct));

        // A lease that ran out and was taken over stays with the new holder.
        var second = TestItems.Capture(2);
        Assert.True(await queue.EnqueueAsync(second, Ct));
        var stale = await queue.TryDequeueAsync("worker-a", Ct);
        Assert.NotNull(stale);
        await AdvanceAsync(Past(ShortLease));
        var taken = await queue.TryDequeueAsync("worker-b", Ct);
        Assert.Equal(2, taken?.Attempt);
        Assert.Null(await queue.RenewAsync(stale, Ct));
        Assert.False(await queue.AckAsync(stale, Ct));
        Assert.True(await queue.AckAsync(taken!, Ct));
    }

    [Fact]
    public async Task Invalid_items_are_rejected()
    {
        var queue = CreateQueue(LongLease);
        var item = TestItems.Capture(1);

        await Assert.ThrowsAsync<ArgumentException>(async () => await queue.EnqueueAsync(item with { Sha256 = "abc" }, Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await queue.EnqueueAsync(item with { Sha256 = item.Sha256.ToUpperInvariant() }, Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await queue.EnqueueAsync(item with { ProbeId = " " }, Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await queue.EnqueueAsync(item with { StoredPath = "" }, Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await queue.EnqueueAsync(item with { SizeBytes = -1 }, Ct));
        await Assert.ThrowsAsync<ArgumentException>(async () => await queue.TryDequeueAsync("", Ct));
        Assert.Equal(0, (await queue.GetStatsAsync(Ct)).Pending);
    }

    [Fact]
    public async Task An_expired_lease_is_redelivered_with_the_next_attempt()
    {
        var queue = CreateQueue(ShortLease);
        var item = TestItems.Capture(1);
        await queue.EnqueueAsync(item, Ct);

        var first = await queue.TryDequeueAsync("worker-a", Ct);
        Assert.Equal(1, first?.Attempt);
        Assert.Null(await queue.TryDequeueAsync("worker-b", Ct)); // still leased

        await AdvanceAsync(Past(ShortLease));
        var stats = await queue.GetStatsAsync(Ct);
        Assert.Equal((1, 0), (stats.Pending, stats.InFlight)); // an expired lease is pending work again

        var second = await queue.TryDequeueAsync("worker-b", Ct);
        Assert.NotNull(second);
        Assert.Equal(item, second.Item);
        Assert.Equal(2, second.Attempt);
        Assert.NotEqual(first!.DeliveryId, second.DeliveryId);

        // worker-a comes back too late: its lease is gone and worker-b's stands.
        Assert.False(await queue.AckAsync(first, Ct));
        Assert.False(await queue.NackAsync(first, "too late", null, Ct));
        Assert.Null(await queue.TryDequeueAsync("worker-c", Ct));
        Assert.True(await queue.AckAsync(second, Ct));
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await queue.GetStatsAsync(Ct));
    }

    [Fact]
    public async Task The_same_consumer_taking_back_its_expired_item_gets_a_new_lease()
    {
        var queue = CreateQueue(ShortLease);
        await queue.EnqueueAsync(TestItems.Capture(1), Ct);

        var first = await queue.TryDequeueAsync("worker-a", Ct);
        await AdvanceAsync(Past(ShortLease));
        var second = await queue.TryDequeueAsync("worker-a", Ct); // e.g. the same host restarted

        Assert.Equal(2, second?.Attempt);
        Assert.False(await queue.AckAsync(first!, Ct));
        Assert.True(await queue.AckAsync(second!, Ct));
    }

    [Fact]
    public async Task A_nacked_item_comes_back_after_the_retry_delay()
    {
        var queue = CreateQueue(LongLease);
        var item = TestItems.Capture(1);
        await queue.EnqueueAsync(item, Ct);

        var first = await queue.TryDequeueAsync("worker-a", Ct);
        Assert.True(await queue.NackAsync(first!, "parquet writer busy", RetryDelay, Ct));
        Assert.Null(await queue.TryDequeueAsync("worker-b", Ct));
        var waiting = await queue.GetStatsAsync(Ct);
        Assert.Equal((1, 0), (waiting.Pending, waiting.InFlight));

        await AdvanceAsync(Past(RetryDelay));
        var second = await queue.TryDequeueAsync("worker-b", Ct);
        Assert.Equal(item, second?.Item);
        Assert.Equal(2, second!.Attempt);

        // Without a delay it is available at once.
        Assert.True(await queue.NackAsync(second, "again", null, Ct));
        var third = await queue.TryDequeueAsync("worker-c", Ct);
        Assert.Equal(3, third?.Attempt);
        Assert.False(await queue.AckAsync(second, Ct));
        Assert.True(await queue.AckAsync(third!, Ct));
    }

    [Fact]
    public async Task Nacks_up_to_max_attempts_dead_letter_the_item_with_the_last_reason()
    {
        var queue = CreateQueue(LongLease, maxAttempts: 3);
        var item = TestItems.Capture(1);
        var other = TestItems.Capture(2);
        await queue.EnqueueAsync(item, Ct);

        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var lease = await queue.TryDequeueAsync("worker", Ct);
            Assert.Equal(attempt, lease?.Attempt);
            Assert.True(await queue.NackAsync(lease!, $"truncated pcapng block ({attempt})", null, Ct));
        }

        Assert.Null(await queue.TryDequeueAsync("worker", Ct));
        Assert.Equal(new IngestQueueStats(0, 0, 1, null), await queue.GetStatsAsync(Ct));
        var dead = Assert.Single(await queue.GetDeadLettersAsync(10, Ct));
        Assert.Equal(item, dead.Item);
        Assert.Equal(3, dead.Attempts);
        Assert.Equal("truncated pcapng block (3)", dead.Reason);
        Assert.InRange(Time.GetUtcNow() - dead.DeadLetteredAt, TimeSpan.Zero, TimeSpan.FromSeconds(5));

        // Other items are unaffected, and the dead sha can be queued again once its cause is fixed.
        await queue.EnqueueAsync(other, Ct);
        Assert.True(await queue.EnqueueAsync(item, Ct));
        Assert.Equal(other, (await queue.TryDequeueAsync("worker", Ct))?.Item);
        var retried = await queue.TryDequeueAsync("worker", Ct);
        Assert.Equal(item, retried?.Item);
        Assert.Equal(1, retried!.Attempt);
        Assert.Single(await queue.GetDeadLettersAsync(10, Ct));
    }

    [Fact]
    public async Task An_item_whose_consumers_keep_dying_is_dead_lettered_after_max_attempts()
    {
        var queue = CreateQueue(ShortLease, maxAttempts: 2);
        var item = TestItems.Capture(1);
        await queue.EnqueueAsync(item, Ct);

        Assert.Equal(1, (await queue.TryDequeueAsync("worker-a", Ct))?.Attempt);
        await AdvanceAsync(Past(ShortLease));
        Assert.Equal(2, (await queue.TryDequeueAsync("worker-b", Ct))?.Attempt);
        await AdvanceAsync(Past(ShortLease));

        Assert.Null(await queue.TryDequeueAsync("worker-c", Ct));
        Assert.Equal(new IngestQueueStats(0, 0, 1, null), await queue.GetStatsAsync(Ct));
        var dead = Assert.Single(await queue.GetDeadLettersAsync(10, Ct));
        Assert.Equal(item, dead.Item);
        Assert.Equal(2, dead.Attempts);
        Assert.Contains("lease", dead.Reason, StringComparison.Ordinal);
        Assert.Contains("expired", dead.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrent_consumers_never_hold_the_same_item_at_once()
    {
        const int Items = 120;
        // Two handles: like two processes (two connections) on one queue.
        var queues = new[] { CreateQueue(LongLease), CreateQueue(LongLease) };
        for (var i = 0; i < Items; i++)
        {
            await queues[i % 2].EnqueueAsync(TestItems.Capture(i), Ct);
        }

        var held = new ConcurrentDictionary<string, string>();
        var delivered = new ConcurrentBag<string>();
        var overlaps = new ConcurrentBag<string>();
        var lostAcks = 0;
        var workers = Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            var queue = queues[w % 2];
            var name = $"worker-{w}";
            while (await queue.TryDequeueAsync(name, Ct) is { } lease)
            {
                if (!held.TryAdd(lease.Item.Sha256, name))
                {
                    overlaps.Add(lease.Item.Sha256);
                }
                delivered.Add(lease.Item.Sha256);
                await Task.Yield();
                held.TryRemove(lease.Item.Sha256, out _);
                if (!await queue.AckAsync(lease, Ct))
                {
                    Interlocked.Increment(ref lostAcks);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);

        Assert.Empty(overlaps);
        Assert.Equal(0, lostAcks);
        Assert.Equal(Items, delivered.Count);
        Assert.Equal(Items, delivered.Distinct().Count());
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await queues[0].GetStatsAsync(Ct));
    }

    [Fact]
    public async Task Items_come_out_in_enqueue_order_and_a_retry_goes_before_newer_items()
    {
        var queue = CreateQueue(LongLease);
        var items = Enumerable.Range(0, 10).Select(i => TestItems.Capture(i)).ToList();
        foreach (var item in items)
        {
            await queue.EnqueueAsync(item, Ct);
        }

        var first = await queue.TryDequeueAsync("w", Ct);
        Assert.Equal(items[0], first?.Item);
        await queue.NackAsync(first!, "retry now", null, Ct);

        var order = new List<CaptureEnqueued>();
        while (await queue.TryDequeueAsync("w", Ct) is { } lease)
        {
            order.Add(lease.Item);
            await queue.AckAsync(lease, Ct);
        }
        Assert.Equal(items, order);
    }

    [Fact]
    public async Task Stats_count_pending_in_flight_and_dead_and_age_the_oldest_pending()
    {
        var queue = CreateQueue(LongLease, maxAttempts: 1);
        var age = RetryDelay; // any span the clock can be moved by
        await queue.EnqueueAsync(TestItems.Capture(1), Ct);
        await queue.EnqueueAsync(TestItems.Capture(2), Ct);
        await queue.EnqueueAsync(TestItems.Capture(3), Ct);
        await AdvanceAsync(age);
        await queue.EnqueueAsync(TestItems.Capture(4), Ct);

        var a = await queue.TryDequeueAsync("w", Ct); // capture 1
        var stats = await queue.GetStatsAsync(Ct);
        Assert.Equal((3, 1, 0), (stats.Pending, stats.InFlight, stats.DeadLettered));
        Assert.NotNull(stats.OldestPendingAge); // capture 2, queued before the clock moved
        Assert.InRange(stats.OldestPendingAge.Value, age - TimeSpan.FromMilliseconds(50), age + TimeSpan.FromSeconds(5));

        var b = await queue.TryDequeueAsync("w", Ct); // capture 2
        await queue.NackAsync(b!, "unreadable", null, Ct); // last attempt: dead
        stats = await queue.GetStatsAsync(Ct);
        Assert.Equal((2, 1, 1), (stats.Pending, stats.InFlight, stats.DeadLettered));

        await queue.AckAsync(a!, Ct);
        stats = await queue.GetStatsAsync(Ct);
        Assert.Equal((2, 0, 1), (stats.Pending, stats.InFlight, stats.DeadLettered));
    }

    [Fact]
    public async Task A_consumer_killed_mid_item_is_replaced_by_exactly_one_other_consumer()
    {
        var lease = ShortLease;
        var queue = CreateQueue(lease);
        var item = TestItems.Capture(1);
        await queue.EnqueueAsync(item, Ct);

        using (var child = ChildProcess.Start("hold", "doomed-worker", ChildSettings(lease, 5)))
        {
            Assert.Equal($"LEASED {item.Sha256} 1", await child.ReadLineAsync(TimeSpan.FromSeconds(20)));
            child.Kill();
        }
        var stats = await queue.GetStatsAsync(Ct);
        Assert.Equal((0, 1), (stats.Pending, stats.InFlight)); // the dead process still holds the lease

        CatchUpWithWallClock();
        await AdvanceAsync(Past(lease));

        // Several consumers race for the orphaned item; exactly one wins it.
        var queues = new[] { queue, CreateQueue(lease) };
        var leases = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
            Task.Run(async () => await queues[i % 2].TryDequeueAsync($"survivor-{i}", Ct))));
        var winner = Assert.Single(leases, l => l is not null);
        Assert.Equal(item, winner!.Item);
        Assert.Equal(2, winner.Attempt);

        Assert.True(await queue.AckAsync(winner, Ct));
        Assert.Null(await queue.TryDequeueAsync("survivor-0", Ct));
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await queue.GetStatsAsync(Ct));
    }
}

using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Survey6.Ingest.Tests;

[Collection(RedisCollection.Name)]
public sealed class RedisStreamsIngestQueueTests : IngestQueueContractTests
{
    private readonly RedisServerFixture _redis;

    // A stream per test keeps the tests apart on the shared server.
    private readonly string _stream = $"test:{Guid.NewGuid():N}";

    public RedisStreamsIngestQueueTests(RedisServerFixture redis)
    {
        _redis = redis;
    }

    // Leases run on the Redis server's clock, so these are real waits: short enough to wait out, long
    // enough that killing and reaping a child process on a busy CI machine fits inside one lease.
    protected override TimeSpan ShortLease => TimeSpan.FromSeconds(3);

    protected override TimeSpan RetryDelay => TimeSpan.FromMilliseconds(500);

    protected override TimeProvider Time => TimeProvider.System;

    protected override IIngestQueue NewQueue(TimeSpan leaseTime, int maxAttempts) =>
        new RedisStreamsIngestQueue(_redis.Connection, Options(leaseTime, maxAttempts), TimeProvider.System);

    protected override Task AdvanceAsync(TimeSpan by) => Task.Delay(by);

    protected override IEnumerable<string> ChildSettings(TimeSpan leaseTime, int maxAttempts) =>
    [
        "Ingest:Kind=redis",
        $"Ingest:Redis:Configuration={_redis.Configuration}",
        $"Ingest:Redis:Stream={_stream}",
        "Ingest:Redis:Group=aggregator",
        $"Ingest:LeaseTime={leaseTime:c}",
        $"Ingest:MaxAttempts={maxAttempts}",
    ];

    private IDatabase Db => _redis.Connection.GetDatabase();

    [Fact]
    public async Task Done_and_dead_items_leave_no_entries_or_guards_behind()
    {
        var queue = CreateQueue(LongLease, maxAttempts: 1);
        var done = TestItems.Capture(1);
        var dead = TestItems.Capture(2);
        await queue.EnqueueAsync(done, Ct);
        await queue.EnqueueAsync(dead, Ct);
        Assert.True(await Db.KeyExistsAsync($"{_stream}:sha:{done.Sha256}"));

        await queue.AckAsync((await queue.TryDequeueAsync("w", Ct))!, Ct);
        await queue.NackAsync((await queue.TryDequeueAsync("w", Ct))!, "bad", null, Ct);

        Assert.Equal(0, await Db.StreamLengthAsync(_stream));
        Assert.Equal(0, (await Db.StreamPendingAsync(_stream, "aggregator")).PendingMessageCount);
        Assert.False(await Db.KeyExistsAsync($"{_stream}:sha:{done.Sha256}"));
        Assert.False(await Db.KeyExistsAsync($"{_stream}:sha:{dead.Sha256}"));
        Assert.Equal(1, await Db.StreamLengthAsync($"{_stream}:dead"));
    }

    [Fact]
    public async Task Attempts_are_the_group_delivery_count()
    {
        var queue = CreateQueue(ShortLease);
        await queue.EnqueueAsync(TestItems.Capture(1), Ct);
        await queue.TryDequeueAsync("worker-a", Ct);
        await AdvanceAsync(Past(ShortLease));

        var lease = await queue.TryDequeueAsync("worker-b", Ct);

        var pending = Assert.Single(await Db.StreamPendingMessagesAsync(_stream, "aggregator", 10, RedisValue.Null));
        Assert.Equal("worker-b", pending.ConsumerName);
        Assert.Equal(lease!.Attempt, pending.DeliveryCount);
    }

    [Fact]
    public async Task A_retry_delay_longer_than_the_lease_is_capped_at_the_lease()
    {
        var queue = CreateQueue(ShortLease);
        await queue.EnqueueAsync(TestItems.Capture(1), Ct);
        var first = await queue.TryDequeueAsync("w", Ct);

        Assert.True(await queue.NackAsync(first!, "later", TimeSpan.FromHours(1), Ct));
        Assert.Null(await queue.TryDequeueAsync("w", Ct));
        await AdvanceAsync(Past(ShortLease));

        Assert.Equal(2, (await queue.TryDequeueAsync("w", Ct))?.Attempt);
    }

    [Fact]
    public async Task The_group_is_recreated_when_the_stream_disappears()
    {
        var queue = CreateQueue(LongLease);
        await queue.EnqueueAsync(TestItems.Capture(1), Ct);
        await queue.AckAsync((await queue.TryDequeueAsync("w", Ct))!, Ct);

        await Db.KeyDeleteAsync(_stream); // e.g. a Redis restart without persistence
        var item = TestItems.Capture(2);
        await queue.EnqueueAsync(item, Ct);

        Assert.Equal(item, (await queue.TryDequeueAsync("w", Ct))?.Item);
    }

    private IOptions<IngestOptions> Options(TimeSpan leaseTime, int maxAttempts) =>
        Microsoft.Extensions.Options.Options.Create(new IngestOptions
        {
            Kind = IngestQueueKind.Redis,
            LeaseTime = leaseTime,
            MaxAttempts = maxAttempts,
            Redis = { Configuration = _redis.Configuration, Stream = _stream, Group = "aggregator" },
        });
}

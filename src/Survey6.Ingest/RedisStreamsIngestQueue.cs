using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Survey6.Ingest;

/// <summary>
/// The scale-out ingest queue: a Redis stream read through one consumer group. XREADGROUP hands
/// each new entry to one consumer; an entry stays in the group's pending list until XACK; an entry
/// idle there for longer than the lease is taken over with XAUTOCLAIM, and its delivery counter
/// (read with XPENDING) is the attempt number. Exhausted entries go to a second stream,
/// <c>{Stream}:dead</c>. A hash per sha, <c>{Stream}:sha:{sha}</c>, guards against duplicates and
/// keeps the last failure reason. Leases run on the Redis server's clock; the
/// <see cref="TimeProvider"/> only stamps times the queue reports.
/// </summary>
/// <remarks>
/// Durability is Redis's: run it with appendonly yes (appendfsync everysec or always) so an
/// enqueue acknowledged to a probe survives a Redis restart.
/// </remarks>
public sealed class RedisStreamsIngestQueue : IIngestQueue, IDisposable
{
    // Nacked entries are parked on this consumer until their retry delay has passed, so they never
    // count as in flight and no real consumer's lease check can match them.
    internal const string RetryConsumer = "survey6:retry";

    // Entry field names.
    private const string FSha = "sha256", FProbe = "probe", FPath = "path", FSize = "size",
        FReceived = "received", FManifest = "manifest", FEnqueued = "enqueued";

    // Multi-step changes run as scripts so that "check who holds the lease, then change it" cannot
    // interleave with another consumer's XAUTOCLAIM.
    private const string EnqueueScript = """
        if redis.call('HSETNX', KEYS[2], 'entry', '') == 0 then return false end
        local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV))
        redis.call('HSET', KEYS[2], 'entry', id)
        return id
        """;

    // Holder check shared by the scripts below: ARGV[1] group, ARGV[2] entry id, ARGV[3] consumer,
    // ARGV[4] delivery count of the lease.
    private const string HolderCheck = """
        local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
        if #p == 0 or p[1][2] ~= ARGV[3] or p[1][4] ~= tonumber(ARGV[4]) then return 0 end
        """;

    private const string AckScript = HolderCheck + "\n" + """
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
        redis.call('XDEL', KEYS[1], ARGV[2])
        redis.call('DEL', KEYS[2])
        return 1
        """;

    // ARGV[5] lease time in ms. A lease idle past it may be claimed by another consumer at any
    // moment, so it is not extended; otherwise XCLAIM onto the same consumer resets the idle time
    // (the lease clock) and JUSTID leaves the delivery counter alone.
    private const string RenewScript = HolderCheck + "\n" + """
        if p[1][3] >= tonumber(ARGV[5]) then return 0 end
        redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
        return 1
        """;

    // ARGV[5] reason, ARGV[6] idle to set in ms, ARGV[7] retry consumer. IDLE backdates the
    // delivery so XAUTOCLAIM takes the entry once the retry delay has passed; JUSTID keeps the
    // delivery counter, which only real deliveries raise.
    private const string NackScript = HolderCheck + "\n" + """
        redis.call('HSET', KEYS[2], 'error', ARGV[5])
        redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[7], 0, ARGV[2], 'IDLE', ARGV[6], 'JUSTID')
        return 1
        """;

    // KEYS[3] dead stream; ARGV[5] reason, ARGV[6] attempts made, ARGV[7] dead-at (unix ms).
    private const string DeadLetterScript = HolderCheck + "\n" + """
        local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
        if #e == 1 then
          local f = e[1][2]
          table.insert(f, 'attempts'); table.insert(f, ARGV[6])
          table.insert(f, 'reason'); table.insert(f, ARGV[5])
          table.insert(f, 'dead_at'); table.insert(f, ARGV[7])
          redis.call('XADD', KEYS[3], '*', unpack(f))
        end
        redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
        redis.call('XDEL', KEYS[1], ARGV[2])
        redis.call('DEL', KEYS[2])
        return 1
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly bool _ownsConnection;
    private readonly IDatabase _db;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _leaseTime;
    private readonly long _leaseMs;
    private readonly int _maxAttempts;
    private readonly RedisKey _stream;
    private readonly RedisKey _deadStream;
    private readonly string _guardPrefix;
    private readonly RedisValue _group;
    private volatile bool _groupReady;

    /// <summary>Uses <paramref name="redis"/>, which the caller keeps and disposes.</summary>
    public RedisStreamsIngestQueue(
        IConnectionMultiplexer redis,
        IOptions<IngestOptions> options,
        TimeProvider timeProvider,
        ILogger<RedisStreamsIngestQueue>? logger = null)
        : this(redis, ownsConnection: false, options, timeProvider, logger)
    {
    }

    private RedisStreamsIngestQueue(
        IConnectionMultiplexer redis,
        bool ownsConnection,
        IOptions<IngestOptions> options,
        TimeProvider timeProvider,
        ILogger<RedisStreamsIngestQueue>? logger)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var o = options.Value;
        IngestOptionsValidator.ThrowIfInvalid(o);
        if (string.IsNullOrWhiteSpace(o.Redis.Stream) || string.IsNullOrWhiteSpace(o.Redis.Group))
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(IngestOptions),
                ["Ingest:Redis:Stream and Ingest:Redis:Group are required."]);
        }

        _redis = redis;
        _ownsConnection = ownsConnection;
        _db = redis.GetDatabase();
        _time = timeProvider;
        _logger = logger ?? NullLogger<RedisStreamsIngestQueue>.Instance;
        _leaseTime = o.LeaseTime;
        _leaseMs = (long)o.LeaseTime.TotalMilliseconds;
        _maxAttempts = o.MaxAttempts;
        _stream = o.Redis.Stream;
        _deadStream = o.Redis.Stream + ":dead";
        _guardPrefix = o.Redis.Stream + ":sha:";
        _group = o.Redis.Group;
    }

    /// <summary>Connects to <c>Ingest:Redis:Configuration</c>; the queue owns that connection.</summary>
    public static RedisStreamsIngestQueue Connect(
        IOptions<IngestOptions> options,
        TimeProvider timeProvider,
        ILogger<RedisStreamsIngestQueue>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        IngestOptionsValidator.ThrowIfInvalid(options.Value);
        if (string.IsNullOrWhiteSpace(options.Value.Redis.Configuration))
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(IngestOptions),
                ["Ingest:Redis:Configuration is required."]);
        }
        var redis = ConnectionMultiplexer.Connect(options.Value.Redis.Configuration);
        try
        {
            return new RedisStreamsIngestQueue(redis, ownsConnection: true, options, timeProvider, logger);
        }
        catch
        {
            redis.Dispose();
            throw;
        }
    }

    public async ValueTask<bool> EnqueueAsync(CaptureEnqueued item, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(item);
        item.Validate();
        await EnsureGroupAsync();
        var fields = new List<RedisValue>
        {
            FSha, item.Sha256,
            FProbe, item.ProbeId,
            FPath, item.StoredPath,
            FSize, item.SizeBytes,
            FReceived, Wire.FormatTime(item.ReceivedAt),
            FEnqueued, _time.GetUtcNow().ToUnixTimeMilliseconds(),
        };
        if (item.ManifestPath is not null)
        {
            fields.Add(FManifest);
            fields.Add(item.ManifestPath);
        }
        var id = await _db.ScriptEvaluateAsync(EnqueueScript, [_stream, Guard(item.Sha256)], [.. fields]);
        return Log.Enqueue(_logger, item, added: !id.IsNull);
    }

    public async ValueTask<IngestLease?> TryDequeueAsync(string consumer, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(consumer);
        if (consumer == RetryConsumer)
        {
            throw new ArgumentException($"'{RetryConsumer}' is reserved.", nameof(consumer));
        }
        await EnsureGroupAsync();

        // Expired leases and due retries first: they are older than anything not yet delivered.
        RedisValue cursor = "0-0";
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var claimed = await WithGroupAsync(() =>
                _db.StreamAutoClaimAsync(_stream, _group, consumer, _leaseMs, cursor, count: 1));
            if (claimed.ClaimedEntries is [var entry])
            {
                var lease = await LeaseClaimedAsync(entry, consumer);
                if (lease is not null)
                {
                    return lease;
                }
            }
            cursor = claimed.NextStartId;
            if (cursor.IsNullOrEmpty || cursor == "0-0")
            {
                break;
            }
        }

        var fresh = await WithGroupAsync(() => _db.StreamReadGroupAsync(_stream, _group, consumer, ">", count: 1));
        if (fresh is not [var first])
        {
            return null;
        }
        var item = ReadItem(first);
        Log.Leased(_logger, item.Sha256, consumer, 1);
        return NewLease(item, first.Id.ToString(), consumer, 1);
    }

    public async ValueTask<bool> AckAsync(IngestLease lease, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var (id, attempt) = ParseDeliveryId(lease.DeliveryId);
        var held = (long)await _db.ScriptEvaluateAsync(AckScript,
            [_stream, Guard(lease.Item.Sha256)],
            [_group, id, lease.Consumer, attempt]) == 1;
        return Log.Ack(_logger, lease, held);
    }

    public async ValueTask<IngestLease?> RenewAsync(IngestLease lease, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var (id, attempt) = ParseDeliveryId(lease.DeliveryId);
        var held = (long)await _db.ScriptEvaluateAsync(RenewScript,
            [_stream, Guard(lease.Item.Sha256)],
            [_group, id, lease.Consumer, attempt, _leaseMs]) == 1;
        return Log.Renewal(_logger, lease, held ? _time.GetUtcNow() + _leaseTime : null);
    }

    public async ValueTask<bool> NackAsync(IngestLease lease, string reason, TimeSpan? retryAfter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(reason);
        var (id, attempt) = ParseDeliveryId(lease.DeliveryId);
        if (attempt >= _maxAttempts)
        {
            var dead = await DeadLetterAsync(lease.Item.Sha256, id, lease.Consumer, attempt, attempt, reason);
            if (!dead)
            {
                Log.LeaseLost(_logger, lease.Consumer, lease.Item.Sha256, lease.Attempt);
            }
            return dead;
        }

        var delay = Wire.Max(retryAfter ?? TimeSpan.Zero, TimeSpan.Zero);
        if (delay > _leaseTime)
        {
            // XCLAIM can only backdate a delivery, so the longest wait it can express is the lease.
            Log.RetryDelayCapped(_logger, lease.Item.Sha256, delay, _leaseTime);
            delay = _leaseTime;
        }
        var idleMs = _leaseMs - (long)delay.TotalMilliseconds;
        var held = (long)await _db.ScriptEvaluateAsync(NackScript,
            [_stream, Guard(lease.Item.Sha256)],
            [_group, id, lease.Consumer, attempt, reason, idleMs, RetryConsumer]) == 1;
        if (held)
        {
            Log.Nacked(_logger, lease.Item.Sha256, attempt, delay, reason);
        }
        else
        {
            Log.LeaseLost(_logger, lease.Consumer, lease.Item.Sha256, lease.Attempt);
        }
        return held;
    }

    public async ValueTask<IngestQueueStats> GetStatsAsync(CancellationToken ct)
    {
        await EnsureGroupAsync();
        var now = _time.GetUtcNow();
        // Acked and dead-lettered entries are deleted, so the stream holds exactly the live items.
        var length = await _db.StreamLengthAsync(_stream);
        var summary = await WithGroupAsync(() => _db.StreamPendingAsync(_stream, _group));
        var inFlightIds = new HashSet<RedisValue>();
        if (summary.PendingMessageCount > 0)
        {
            var details = await _db.StreamPendingMessagesAsync(_stream, _group, (int)summary.PendingMessageCount, RedisValue.Null);
            foreach (var d in details)
            {
                if (d.ConsumerName != RetryConsumer && d.IdleTimeInMilliseconds < _leaseMs)
                {
                    inFlightIds.Add(d.MessageId);
                }
            }
        }
        var deadLettered = await _db.StreamLengthAsync(_deadStream);

        // Stream ids grow with enqueue order, so the first entry not in flight is the oldest pending.
        TimeSpan? oldest = null;
        var head = await _db.StreamRangeAsync(_stream, "-", "+", inFlightIds.Count + 1);
        foreach (var entry in head)
        {
            if (!inFlightIds.Contains(entry.Id))
            {
                var enqueued = DateTimeOffset.FromUnixTimeMilliseconds(Wire.ParseLong(entry[FEnqueued].ToString()));
                oldest = Wire.Max(now - enqueued, TimeSpan.Zero);
                break;
            }
        }
        return new IngestQueueStats(length - inFlightIds.Count, inFlightIds.Count, deadLettered, oldest);
    }

    public async ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int max, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(max);
        if (max == 0)
        {
            return [];
        }
        var entries = await _db.StreamRangeAsync(_deadStream, "-", "+", max);
        return entries.Select(e => new DeadLetter(
            ReadItem(e),
            (int)Wire.ParseLong(e["attempts"].ToString()),
            e["reason"].ToString(),
            DateTimeOffset.FromUnixTimeMilliseconds(Wire.ParseLong(e["dead_at"].ToString())))).ToList();
    }

    public void Dispose()
    {
        if (_ownsConnection)
        {
            _redis.Dispose();
        }
    }

    private async Task<IngestLease?> LeaseClaimedAsync(StreamEntry entry, string consumer)
    {
        var pending = await _db.StreamPendingMessagesAsync(_stream, _group, 1, consumer, entry.Id, entry.Id);
        if (pending is not [var info])
        {
            return null; // gone already: acked or dead-lettered between the two calls
        }
        var deliveries = info.DeliveryCount;
        var item = ReadItem(entry);
        var lastError = (string?)await _db.HashGetAsync(Guard(item.Sha256), "error");
        if (deliveries > _maxAttempts)
        {
            // XAUTOCLAIM already counted a delivery that will not be made.
            var attempts = deliveries - 1;
            var reason = $"lease expired on attempt {attempts}" + (lastError is null ? "" : $"; before: {lastError}");
            await DeadLetterAsync(item.Sha256, entry.Id.ToString(), consumer, deliveries, attempts, reason);
            return null;
        }
        Log.Redelivering(_logger, item.Sha256, consumer, deliveries, lastError ?? "lease expired");
        return NewLease(item, entry.Id.ToString(), consumer, deliveries);
    }

    private async Task<bool> DeadLetterAsync(string sha256, string id, string consumer, int deliveries, int attempts, string reason)
    {
        var done = (long)await _db.ScriptEvaluateAsync(DeadLetterScript,
            [_stream, Guard(sha256), _deadStream],
            [_group, id, consumer, deliveries, reason, attempts, _time.GetUtcNow().ToUnixTimeMilliseconds()]) == 1;
        if (done)
        {
            Log.DeadLettered(_logger, sha256, attempts, reason);
        }
        return done;
    }

    private IngestLease NewLease(CaptureEnqueued item, string id, string consumer, int attempt) =>
        new(item, $"{id}/{attempt}", consumer, attempt, _time.GetUtcNow() + _leaseTime);

    private static (string Id, int Attempt) ParseDeliveryId(string deliveryId)
    {
        var slash = deliveryId.LastIndexOf('/');
        if (slash <= 0 || !int.TryParse(deliveryId.AsSpan(slash + 1), out var attempt))
        {
            throw new ArgumentException($"Not a delivery id of this queue: '{deliveryId}'.", nameof(deliveryId));
        }
        return (deliveryId[..slash], attempt);
    }

    private static CaptureEnqueued ReadItem(StreamEntry e)
    {
        var manifest = e[FManifest];
        return new CaptureEnqueued(
            e[FSha].ToString(),
            e[FProbe].ToString(),
            e[FPath].ToString(),
            Wire.ParseLong(e[FSize].ToString()),
            Wire.ParseTime(e[FReceived].ToString()),
            manifest.IsNull ? null : manifest.ToString());
    }

    private RedisKey Guard(string sha256) => _guardPrefix + sha256;

    private async Task EnsureGroupAsync()
    {
        if (_groupReady)
        {
            return;
        }
        await CreateGroupAsync();
        _groupReady = true;
    }

    private async Task CreateGroupAsync()
    {
        try
        {
            // From "0": a group created after items were queued still delivers them.
            await _db.StreamCreateConsumerGroupAsync(_stream, _group, "0", createStream: true);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("BUSYGROUP", StringComparison.Ordinal))
        {
            // Another process created it first.
        }
    }

    private async Task<T> WithGroupAsync<T>(Func<Task<T>> action)
    {
        try
        {
            return await action();
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOGROUP", StringComparison.Ordinal))
        {
            // The stream was deleted under us (e.g. Redis restarted without persistence): recreate
            // the group once and retry.
            await CreateGroupAsync();
            return await action();
        }
    }
}

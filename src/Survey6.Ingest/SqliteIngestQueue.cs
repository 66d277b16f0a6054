using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Survey6.Data;
using Survey6.Packets.Files;

namespace Survey6.Ingest;

/// <summary>
/// The embedded ingest queue: one SQLite file in WAL mode. Every state change is one write
/// transaction (BEGIN IMMEDIATE), so any number of consumers, in this process or in others sharing
/// the file, never claim the same item twice. A lease is a deadline in the row: once it has passed,
/// the next claim takes the item over with the attempt count raised.
/// </summary>
public sealed class SqliteIngestQueue : IIngestQueue, IDisposable
{
    private const string ItemColumns = "sha256, probe_id, stored_path, size_bytes, received_at, manifest_path";

    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TimeSpan _leaseTime;
    private readonly int _maxAttempts;
    private readonly long _busyTimeoutMs;

    public SqliteIngestQueue(IOptions<IngestOptions> options, TimeProvider timeProvider, ILogger<SqliteIngestQueue>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        var o = options.Value;
        IngestOptionsValidator.ThrowIfInvalid(o);
        if (string.IsNullOrWhiteSpace(o.Sqlite.Path))
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(IngestOptions), ["Ingest:Sqlite:Path is required."]);
        }

        Path = System.IO.Path.GetFullPath(o.Sqlite.Path);
        _time = timeProvider;
        _logger = logger ?? NullLogger<SqliteIngestQueue>.Instance;
        _leaseTime = o.LeaseTime;
        _maxAttempts = o.MaxAttempts;
        _busyTimeoutMs = (long)o.Sqlite.BusyTimeout.TotalMilliseconds;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = (int)Math.Ceiling(o.Sqlite.BusyTimeout.TotalSeconds),
        }.ToString();

        // Usually the C&C's data directory: if missing, it is made owner-only, as the C&C would.
        SecureFiles.CreateOwnerOnlyDirectory(System.IO.Path.GetDirectoryName(Path)!);
        CreateSchema();
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    public async ValueTask<bool> EnqueueAsync(CaptureEnqueued item, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(item);
        item.Validate();
        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        // The UNIQUE sha256 makes a second enqueue of a queued sha a no-op; acked rows are deleted,
        // so a finished sha can be queued again.
        command.CommandText = $"""
            INSERT INTO ingest_queue ({ItemColumns}, enqueued_at, visible_at)
            VALUES ($sha, $probe, $path, $size, $received, $manifest, $now, $now)
            ON CONFLICT (sha256) DO NOTHING
            """;
        command.Parameters.AddWithValue("$sha", item.Sha256);
        command.Parameters.AddWithValue("$probe", item.ProbeId);
        command.Parameters.AddWithValue("$path", item.StoredPath);
        command.Parameters.AddWithValue("$size", item.SizeBytes);
        command.Parameters.AddWithValue("$received", Wire.FormatTime(item.ReceivedAt));
        command.Parameters.AddWithValue("$manifest", (object?)item.ManifestPath ?? DBNull.Value);
        command.Parameters.AddWithValue("$now", now);
        return Log.Enqueue(_logger, item, await command.ExecuteNonQueryAsync(ct) == 1);
    }

    public async ValueTask<IngestLease?> TryDequeueAsync(string consumer, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(consumer);
        var now = _time.GetUtcNow();
        var nowMs = now.ToUnixTimeMilliseconds();
        var expires = now + _leaseTime;
        var deliveryId = Guid.NewGuid().ToString("N");

        await using var connection = await OpenAsync(ct);
        // IMMEDIATE takes the write lock up front: two claimers serialise here instead of both
        // reading the same row and one failing to upgrade its lock later.
        await using var tx = connection.BeginTransaction(deferred: false);

        await DeadLetterExhaustedAsync(connection, tx, nowMs, ct);

        await using var claim = connection.CreateCommand();
        claim.Transaction = tx;
        // One UPDATE ... RETURNING picks and leases the row. SET reads the old values, so
        // last_error records whose lease ran out when an expired lease is taken over.
        claim.CommandText = $"""
            UPDATE ingest_queue
            SET attempts = attempts + 1,
                last_error = CASE WHEN delivery_id IS NULL THEN last_error
                                  ELSE 'lease of ' || consumer || ' expired on attempt ' || attempts END,
                delivery_id = $delivery,
                consumer = $consumer,
                visible_at = $expires
            WHERE seq = (SELECT seq FROM ingest_queue WHERE visible_at <= $now ORDER BY seq LIMIT 1)
            RETURNING {ItemColumns}, attempts, last_error
            """;
        claim.Parameters.AddWithValue("$delivery", deliveryId);
        claim.Parameters.AddWithValue("$consumer", consumer);
        claim.Parameters.AddWithValue("$expires", expires.ToUnixTimeMilliseconds());
        claim.Parameters.AddWithValue("$now", nowMs);

        IngestLease? lease = null;
        string? lastError = null;
        await using (var reader = await claim.ExecuteReaderAsync(ct))
        {
            if (await reader.ReadAsync(ct))
            {
                var item = ReadItem(reader);
                var attempt = reader.GetInt32(6);
                lastError = reader.IsDBNull(7) ? null : reader.GetString(7);
                lease = new IngestLease(item, deliveryId, consumer, attempt, expires);
            }
        }
        await tx.CommitAsync(ct);

        if (lease is not null)
        {
            if (lease.Attempt > 1)
            {
                Log.Redelivering(_logger, lease.Item.Sha256, consumer, lease.Attempt, lastError ?? "");
            }
            else
            {
                Log.Leased(_logger, lease.Item.Sha256, consumer, lease.Attempt);
            }
        }
        return lease;
    }

    public async ValueTask<bool> AckAsync(IngestLease lease, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lease);
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        // The delivery id changes with every claim, so only the current holder's ack matches.
        command.CommandText = "DELETE FROM ingest_queue WHERE sha256 = $sha AND delivery_id = $delivery";
        command.Parameters.AddWithValue("$sha", lease.Item.Sha256);
        command.Parameters.AddWithValue("$delivery", lease.DeliveryId);
        return Log.Ack(_logger, lease, await command.ExecuteNonQueryAsync(ct) == 1);
    }

    public async ValueTask<IngestLease?> RenewAsync(IngestLease lease, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var now = _time.GetUtcNow();
        var expires = now + _leaseTime;
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        // A lease that has run out may already be someone else's on their next dequeue; renewing it
        // late would let two consumers hold the item, so only a live lease is extended.
        command.CommandText = """
            UPDATE ingest_queue SET visible_at = $expires
            WHERE sha256 = $sha AND delivery_id = $delivery AND visible_at > $now
            """;
        command.Parameters.AddWithValue("$expires", expires.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$sha", lease.Item.Sha256);
        command.Parameters.AddWithValue("$delivery", lease.DeliveryId);
        command.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        return Log.Renewal(_logger, lease, await command.ExecuteNonQueryAsync(ct) == 1 ? expires : null);
    }

    public async ValueTask<bool> NackAsync(IngestLease lease, string reason, TimeSpan? retryAfter, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(reason);
        var delay = Wire.Max(retryAfter ?? TimeSpan.Zero, TimeSpan.Zero);
        var now = _time.GetUtcNow();

        await using var connection = await OpenAsync(ct);
        await using var tx = connection.BeginTransaction(deferred: false);

        await using var dead = connection.CreateCommand();
        dead.Transaction = tx;
        dead.CommandText = $"""
            INSERT INTO ingest_dead ({ItemColumns}, enqueued_at, attempts, reason, dead_at)
            SELECT {ItemColumns}, enqueued_at, attempts, $reason, $now
            FROM ingest_queue
            WHERE sha256 = $sha AND delivery_id = $delivery AND attempts >= $max
            """;
        dead.Parameters.AddWithValue("$reason", reason);
        dead.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        dead.Parameters.AddWithValue("$sha", lease.Item.Sha256);
        dead.Parameters.AddWithValue("$delivery", lease.DeliveryId);
        dead.Parameters.AddWithValue("$max", _maxAttempts);
        var deadLettered = await dead.ExecuteNonQueryAsync(ct) == 1;

        await using var update = connection.CreateCommand();
        update.Transaction = tx;
        update.CommandText = deadLettered
            ? "DELETE FROM ingest_queue WHERE sha256 = $sha AND delivery_id = $delivery"
            : """
              UPDATE ingest_queue
              SET delivery_id = NULL, consumer = NULL, visible_at = $visible, last_error = $reason
              WHERE sha256 = $sha AND delivery_id = $delivery
              """;
        update.Parameters.AddWithValue("$sha", lease.Item.Sha256);
        update.Parameters.AddWithValue("$delivery", lease.DeliveryId);
        update.Parameters.AddWithValue("$visible", (now + delay).ToUnixTimeMilliseconds());
        update.Parameters.AddWithValue("$reason", reason);
        var held = await update.ExecuteNonQueryAsync(ct) == 1;
        await tx.CommitAsync(ct);

        if (!held)
        {
            Log.LeaseLost(_logger, lease.Consumer, lease.Item.Sha256, lease.Attempt);
        }
        else if (deadLettered)
        {
            Log.DeadLettered(_logger, lease.Item.Sha256, lease.Attempt, reason);
        }
        else
        {
            Log.Nacked(_logger, lease.Item.Sha256, lease.Attempt, delay, reason);
        }
        return held;
    }

    public async ValueTask<IngestQueueStats> GetStatsAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await OpenAsync(ct);
        // A deferred read transaction: both counts come from one snapshot.
        await using var tx = connection.BeginTransaction(deferred: true);
        await using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = """
            SELECT COUNT(*),
                   COALESCE(SUM(delivery_id IS NOT NULL AND visible_at > $now), 0),
                   MIN(CASE WHEN delivery_id IS NULL OR visible_at <= $now THEN enqueued_at END),
                   (SELECT COUNT(*) FROM ingest_dead)
            FROM ingest_queue
            """;
        command.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var total = reader.GetInt64(0);
        var inFlight = reader.GetInt64(1);
        TimeSpan? oldest = reader.IsDBNull(2)
            ? null
            : Wire.Max(now - DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)), TimeSpan.Zero);
        return new IngestQueueStats(total - inFlight, inFlight, reader.GetInt64(3), oldest);
    }

    public async ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int max, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(max);
        await using var connection = await OpenAsync(ct);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {ItemColumns}, attempts, reason, dead_at FROM ingest_dead ORDER BY id LIMIT $max";
        command.Parameters.AddWithValue("$max", max);
        var result = new List<DeadLetter>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            result.Add(new DeadLetter(
                ReadItem(reader),
                reader.GetInt32(6),
                reader.GetString(7),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8))));
        }
        return result;
    }

    /// <summary>Closes the pooled connections so the file can be moved or deleted.</summary>
    public void Dispose()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    private async Task DeadLetterExhaustedAsync(SqliteConnection connection, SqliteTransaction tx, long nowMs, CancellationToken ct)
    {
        // Items whose last allowed lease ran out (or that outlived a lowered MaxAttempts) are not
        // claimable any more; move them aside with the reason before picking the next item.
        const string Exhausted = "visible_at <= $now AND attempts >= $max";
        await using var move = connection.CreateCommand();
        move.Transaction = tx;
        move.CommandText = $"""
            INSERT INTO ingest_dead ({ItemColumns}, enqueued_at, attempts, reason, dead_at)
            SELECT {ItemColumns}, enqueued_at, attempts,
                   CASE WHEN delivery_id IS NULL THEN COALESCE(last_error, 'too many attempts')
                        ELSE 'lease of ' || consumer || ' expired on attempt ' || attempts
                             || COALESCE('; before: ' || last_error, '') END,
                   $now
            FROM ingest_queue WHERE {Exhausted}
            RETURNING sha256, attempts, reason
            """;
        move.Parameters.AddWithValue("$now", nowMs);
        move.Parameters.AddWithValue("$max", _maxAttempts);
        var moved = 0;
        await using (var reader = await move.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                moved++;
                Log.DeadLettered(_logger, reader.GetString(0), reader.GetInt32(1), reader.GetString(2));
            }
        }
        if (moved == 0)
        {
            return;
        }
        await using var delete = connection.CreateCommand();
        delete.Transaction = tx;
        delete.CommandText = $"DELETE FROM ingest_queue WHERE {Exhausted}";
        delete.Parameters.AddWithValue("$now", nowMs);
        delete.Parameters.AddWithValue("$max", _maxAttempts);
        await delete.ExecuteNonQueryAsync(ct);
    }

    private static CaptureEnqueued ReadItem(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        reader.GetInt64(3),
        Wire.ParseTime(reader.GetString(4)),
        reader.IsDBNull(5) ? null : reader.GetString(5));

    private long NowMs() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct);
            await using var pragma = connection.CreateCommand();
            // busy_timeout lets SQLite itself wait for another process's write lock; FULL makes a
            // commit survive power loss in WAL mode, which an enqueue acknowledged to a probe needs.
            pragma.CommandText = $"PRAGMA busy_timeout = {_busyTimeoutMs}; PRAGMA synchronous = FULL;";
            await pragma.ExecuteNonQueryAsync(ct);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private void CreateSchema() =>
        SqliteMigrator.Migrate(Path, _connectionString, IngestMigrations.Steps, IngestMigrations.AdoptUnversioned, _time);
}

namespace Survey6.Ingest;

/// <summary>
/// The queue between the C&amp;C (producer) and the aggregator (consumers). It delivers every item
/// at least once: a consumer takes a lease, and an item whose lease runs out without an ack is
/// delivered again. Consumers must therefore be idempotent by <see cref="CaptureEnqueued.Sha256"/>.
/// </summary>
public interface IIngestQueue
{
    /// <summary>
    /// Durably queues <paramref name="item"/>. Idempotent per SHA-256: when the same sha is already
    /// pending or in flight, nothing is added and the result is false. A sha that was acked or
    /// dead-lettered can be queued again (to re-ingest it).
    /// </summary>
    ValueTask<bool> EnqueueAsync(CaptureEnqueued item, CancellationToken ct);

    /// <summary>
    /// Leases the oldest available item to <paramref name="consumer"/>, or returns null at once when
    /// none is available. Items whose lease expired are available again, with the attempt count
    /// raised; an item whose last allowed attempt expired is dead-lettered here instead.
    /// </summary>
    ValueTask<IngestLease?> TryDequeueAsync(string consumer, CancellationToken ct);

    /// <summary>
    /// Marks the leased item done and removes it. False when the lease was lost: it expired and
    /// another consumer took the item over (that consumer now owns it).
    /// </summary>
    ValueTask<bool> AckAsync(IngestLease lease, CancellationToken ct);

    /// <summary>
    /// Extends the lease by a whole lease time from now, so that a consumer busy with a long item
    /// keeps it while a dead consumer's item is still taken over one lease time after its last
    /// renewal. Returns the renewed lease (same delivery and attempt, later
    /// <see cref="IngestLease.LeaseExpiresAt"/>), or null when the lease was lost.
    /// </summary>
    ValueTask<IngestLease?> RenewAsync(IngestLease lease, CancellationToken ct);

    /// <summary>
    /// Gives the item back after a failed attempt, keeping <paramref name="reason"/>. It is delivered
    /// again after <paramref name="retryAfter"/> (null: at once), or dead-lettered when this was the
    /// last allowed attempt. The Redis queue cannot delay longer than the lease time and caps it
    /// there. False when the lease was lost.
    /// </summary>
    ValueTask<bool> NackAsync(IngestLease lease, string reason, TimeSpan? retryAfter, CancellationToken ct);

    /// <summary>Counts for monitoring.</summary>
    ValueTask<IngestQueueStats> GetStatsAsync(CancellationToken ct);

    /// <summary>The oldest dead letters, at most <paramref name="max"/>.</summary>
    ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int max, CancellationToken ct);
}

/// <summary>One delivery of an item to one consumer.</summary>
/// <param name="Item">The capture to ingest.</param>
/// <param name="DeliveryId">Opaque, unique for this delivery; the queue uses it to recognise the lease.</param>
/// <param name="Consumer">Who holds the lease.</param>
/// <param name="Attempt">1 for the first delivery, raised on every redelivery.</param>
/// <param name="LeaseExpiresAt">After this the item may be delivered to someone else.</param>
public sealed record IngestLease(
    CaptureEnqueued Item,
    string DeliveryId,
    string Consumer,
    int Attempt,
    DateTimeOffset LeaseExpiresAt);

/// <summary>Queue counts.</summary>
/// <param name="Pending">Waiting for a consumer: new, waiting for a retry, or with an expired lease.</param>
/// <param name="InFlight">Under a lease that has not expired.</param>
/// <param name="DeadLettered">Given up on; kept with their reason.</param>
/// <param name="OldestPendingAge">How long the oldest pending item has been queued; null when none is pending.</param>
public sealed record IngestQueueStats(long Pending, long InFlight, long DeadLettered, TimeSpan? OldestPendingAge);

/// <summary>An item the queue gave up on after too many attempts.</summary>
/// <param name="Item">The capture.</param>
/// <param name="Attempts">Deliveries made.</param>
/// <param name="Reason">The last failure: a nack's reason or the lease expiry.</param>
/// <param name="DeadLetteredAt">When it was given up on.</param>
public sealed record DeadLetter(CaptureEnqueued Item, int Attempts, string Reason, DateTimeOffset DeadLetteredAt);

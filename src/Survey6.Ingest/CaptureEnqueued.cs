namespace Survey6.Ingest;

/// <summary>
/// A stored capture waiting to be ingested: what the C&amp;C enqueues once the file is durable and
/// what the aggregator consumes. <see cref="Sha256"/> names the capture and is the idempotency key
/// of the whole pipeline.
/// </summary>
/// <param name="Sha256">SHA-256 of the capture file, 64 lowercase hex digits.</param>
/// <param name="ProbeId">The uploading probe, as taken from its certificate.</param>
/// <param name="StoredPath">Where the C&amp;C stored the file.</param>
/// <param name="SizeBytes">File size in bytes.</param>
/// <param name="ReceivedAt">When the C&amp;C received the upload.</param>
/// <param name="ManifestPath">The probe's manifest stored beside the capture, if it sent one.</param>
public sealed record CaptureEnqueued(
    string Sha256,
    string ProbeId,
    string StoredPath,
    long SizeBytes,
    DateTimeOffset ReceivedAt,
    string? ManifestPath)
{
    /// <summary>Throws <see cref="ArgumentException"/> when the item cannot be queued.</summary>
    public void Validate()
    {
        // Lowercase only: the sha is the dedupe key, so "AB.." and "ab.." must not become two items.
        if (Sha256 is not { Length: 64 } || !Sha256.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            throw new ArgumentException($"Sha256 must be 64 lowercase hex digits, got '{Sha256}'.", nameof(Sha256));
        }
        if (string.IsNullOrWhiteSpace(ProbeId))
        {
            throw new ArgumentException("ProbeId is required.", nameof(ProbeId));
        }
        if (string.IsNullOrWhiteSpace(StoredPath))
        {
            throw new ArgumentException("StoredPath is required.", nameof(StoredPath));
        }
        if (SizeBytes < 0)
        {
            throw new ArgumentException("SizeBytes must not be negative.", nameof(SizeBytes));
        }
    }
}

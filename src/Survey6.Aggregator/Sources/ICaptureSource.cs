namespace Survey6.Aggregator.Sources;

/// <summary>
/// A stored capture waiting to be parsed. <see cref="Receipt"/> is the source's own handle (a queue lease, say)
/// and is handed back in <see cref="ICaptureSource.CompleteAsync"/>.
/// </summary>
/// <param name="Sha256">SHA-256 of the capture file, 64 lower-case hex digits: the pipeline's idempotency key.</param>
/// <param name="ProbeId">The uploading probe.</param>
/// <param name="Date">The UTC date folder the C&amp;C stored it under (the capture window's start).</param>
/// <param name="CapturePath">The pcapng (or pcap) file.</param>
/// <param name="ManifestPath">The manifest beside it, when there is one.</param>
public sealed record PendingCapture(string Sha256, string ProbeId, DateOnly Date, string CapturePath, string? ManifestPath)
{
    public object? Receipt { get; init; }

    /// <summary>
    /// Why the source will not have this capture parsed (a queue item naming a file other than the capture's place in
    /// the data directory); the parse stage records it quarantined with this reason and touches no file.
    /// </summary>
    public string? Refusal { get; init; }
}

/// <summary>How processing a capture ended, as reported back to its source.</summary>
public enum CaptureOutcome
{
    /// <summary>Its packets file is in the lake.</summary>
    Parsed,

    /// <summary>It failed and will be retried later.</summary>
    Failed,

    /// <summary>It was given up on; the ledger says why.</summary>
    Quarantined,
}

/// <summary>
/// Where the parse stage learns which captures to process: a scan of <c>DATA/captures</c> for manifests the ledger
/// has not seen (<see cref="DirectoryCaptureSource"/>), or the ingest queue (<see cref="IngestQueueCaptureSource"/>),
/// which leases in <see cref="ListAsync"/> and acks in <see cref="CompleteAsync"/>. Delivery may be at least once:
/// the parse stage is idempotent by SHA-256.
/// </summary>
public interface ICaptureSource
{
    /// <summary>Captures to process now, oldest first.</summary>
    IAsyncEnumerable<PendingCapture> ListAsync(CancellationToken ct);

    /// <summary>Called once per listed capture after its outcome is in the ledger.</summary>
    ValueTask CompleteAsync(PendingCapture capture, CaptureOutcome outcome, string? reason, CancellationToken ct);

    /// <summary>
    /// Whether parse runs of several processes may overlap: true when the source hands each capture to one of them
    /// (queue leases); false for a scan, where two runs would list the same captures.
    /// </summary>
    bool ConcurrentRuns => false;

    /// <summary>False when there is surely nothing to list, so a frequent schedule records no empty runs.</summary>
    ValueTask<bool> HasWorkAsync(CancellationToken ct) => ValueTask.FromResult(true);
}

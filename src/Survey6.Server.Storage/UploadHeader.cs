namespace Survey6.Server.Storage;

/// <summary>What a probe declares before sending a capture's bytes.</summary>
/// <param name="Sha256">SHA-256 of the whole file, 64 hex digits (either case).</param>
/// <param name="Size">File size in bytes.</param>
/// <param name="WindowStart">Start of the capture window; its UTC date names the storage directory.</param>
/// <param name="WindowEnd">End of the capture window; not before <paramref name="WindowStart"/>.</param>
/// <param name="ManifestJson">The probe's manifest, a JSON object (empty for none); stored inside the server's manifest.</param>
public sealed record UploadHeader(string Sha256, long Size, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, string ManifestJson);

/// <summary>A capture that is durable in the store.</summary>
/// <param name="Sha256">Lower-case hex SHA-256, the capture's name.</param>
/// <param name="ProbeId">The probe that uploaded it.</param>
/// <param name="Path">Absolute path of <c>SHA.pcapng</c>.</param>
/// <param name="Size">File size in bytes.</param>
/// <param name="ManifestPath">Absolute path of <c>SHA.manifest.json</c> beside it.</param>
/// <param name="Duplicate">True when the store already held the capture before this upload.</param>
public sealed record StoredCapture(string Sha256, string ProbeId, string Path, long Size, string ManifestPath, bool Duplicate);

/// <summary>What the store holds of one capture, for a probe's status query.</summary>
/// <param name="Bytes">Bytes held: the full size once stored, the partial upload's length before that, else 0.</param>
/// <param name="Complete">True only when the capture is stored and was handed to the sink, i.e. an upload would be acknowledged at once.</param>
public readonly record struct HeldBytes(long Bytes, bool Complete);

/// <summary>What <see cref="CaptureStore.RecoverAsync"/> did.</summary>
/// <param name="Requeued">Stored captures offered to the sink again because their <c>.queued</c> marker was missing.</param>
/// <param name="AbandonedUploads">Partial uploads deleted because nothing was written to them for <see cref="CaptureStoreOptions.AbandonedUploadAge"/>.</param>
/// <param name="RemovedLeftovers">Files of interrupted steps removed: temporary files, manifests without a capture, incoming files of stored captures.</param>
/// <param name="SkippedBusy">Captures skipped because an upload session held them.</param>
public sealed record RecoveryReport(int Requeued, int AbandonedUploads, int RemovedLeftovers, int SkippedBusy);

/// <summary>What one sweep of <c>incoming/</c> deleted (<see cref="CaptureStore.ExpireAbandonedAsync"/>).</summary>
public sealed record SweepReport(int Abandoned, int Leftovers, int Busy);

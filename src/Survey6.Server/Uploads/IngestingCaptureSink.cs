using Survey6.Contracts.Manifests;
using Survey6.Ingest;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// What happens to a capture once it is durable, before its upload is acknowledged: it is queued for ingest
/// (<see cref="CaptureEnqueued"/>), then recorded in the <c>uploads</c> table with an event. Both are
/// idempotent by SHA-256, as <see cref="ICaptureStoredSink"/> requires: recovery and retried uploads offer a
/// capture again. The queue goes first: if recording fails, the probe gets no ack, retries, and the second
/// offer finds the capture already queued.
/// </summary>
public sealed class IngestingCaptureSink(IIngestQueue queue, UploadRecords records, TimeProvider time) : ICaptureStoredSink
{
    public async ValueTask OnStoredAsync(StoredCapture capture, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(capture);
        var manifest = await ReadManifestAsync(capture.ManifestPath, cancellationToken).ConfigureAwait(false);
        var receivedAt = manifest?.ReceivedAt ?? time.GetUtcNow();
        await queue.EnqueueAsync(
            new CaptureEnqueued(capture.Sha256, capture.ProbeId, capture.Path, capture.Size, receivedAt, capture.ManifestPath),
            cancellationToken).ConfigureAwait(false);
        records.RecordStored(new UploadRecord(0, capture.Sha256, capture.ProbeId, capture.Size,
            manifest?.WindowStart ?? receivedAt, manifest?.WindowEnd ?? receivedAt, receivedAt, Duplicate: false, capture.Path));
    }

    /// <summary>
    /// The manifest for the uploads table. The store writes it before the capture; a missing or unreadable one (a
    /// person's doing, found by recovery) must not keep the capture out of the queue: the aggregator reports it.
    /// </summary>
    private static async Task<StoredCaptureManifest?> ReadManifestAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            return StoredCaptureManifest.Parse(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or ManifestException)
        {
            return null;
        }
    }
}

using System.Text.Json;
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
        var receivedAt = manifest.ReceivedAt ?? time.GetUtcNow();
        await queue.EnqueueAsync(
            new CaptureEnqueued(capture.Sha256, capture.ProbeId, capture.Path, capture.Size, receivedAt, capture.ManifestPath),
            cancellationToken).ConfigureAwait(false);
        records.RecordStored(new UploadRecord(0, capture.Sha256, capture.ProbeId, capture.Size,
            manifest.WindowStart ?? receivedAt, manifest.WindowEnd ?? receivedAt, receivedAt, Duplicate: false, capture.Path));
    }

    /// <summary>The window and receipt time the store wrote into the server manifest; missing fields stay null.</summary>
    private static async Task<(DateTimeOffset? WindowStart, DateTimeOffset? WindowEnd, DateTimeOffset? ReceivedAt)> ReadManifestAsync(
        string path, CancellationToken cancellationToken)
    {
        // The store always writes the manifest before the capture; tolerate its absence rather than refuse to queue.
        if (!File.Exists(path))
            return (null, null, null);
        await using var stream = File.OpenRead(path);
        using var document = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        var root = document.RootElement;
        return (Time(root, "window_start"), Time(root, "window_end"), Time(root, "received_at"));

        static DateTimeOffset? Time(JsonElement root, string name) =>
            root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.TryGetDateTimeOffset(out var t) ? t : null;
    }
}

using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Data;
using Survey6.Ingest;

namespace Survey6.Aggregator.Sources;

/// <summary>
/// Captures taken off the ingest queue the C&amp;C fills (<see cref="IIngestQueue"/>: SQLite on one host, Redis Streams
/// for workers on several). <see cref="ListAsync"/> leases one item at a time, only when the parse stage asks for the
/// next capture, and keeps the lease alive while the capture is parsed; <see cref="CompleteAsync"/> acks it once the
/// outcome is in the ledger. A worker that dies stops renewing, so its capture goes to another worker one lease time
/// later. Failed captures are acked too: the ledger has recorded them with their back-off and the cleanup stage
/// retries and quarantines them (the queue's own dead-lettering is left for captures that kill their worker every
/// time).
/// </summary>
public sealed class IngestQueueCaptureSource : ICaptureSource
{
    private readonly IIngestQueue _queue;
    private readonly AggregatorOptions _options;
    private readonly TimeSpan _renewEvery;
    private readonly ILogger<IngestQueueCaptureSource> _logger;

    public IngestQueueCaptureSource(
        IIngestQueue queue,
        IOptions<AggregatorOptions> options,
        IOptions<IngestOptions> ingest,
        ILogger<IngestQueueCaptureSource> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(ingest);
        _queue = queue;
        _options = options.Value;
        // Three renewals per lease: one lost or late round trip does not cost the lease.
        _renewEvery = ingest.Value.LeaseTime / 3;
        _logger = logger;
        Consumer = ConsumerName(_options.WorkerName);
    }

    /// <summary>This process's name on the queue: the worker name (default: the host name) and the process id.</summary>
    public string Consumer { get; }

    /// <summary>Leases are per capture, so several workers may parse at once.</summary>
    public bool ConcurrentRuns => true;

    public static string ConsumerName(string? workerName) =>
        (string.IsNullOrWhiteSpace(workerName) ? Environment.MachineName : workerName) + ":" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);

    public async ValueTask<bool> HasWorkAsync(CancellationToken ct) => (await _queue.GetStatsAsync(ct).ConfigureAwait(false)).Pending > 0;

    public async IAsyncEnumerable<PendingCapture> ListAsync([EnumeratorCancellation] CancellationToken ct)
    {
        // At most one batch: the parse stage stops there, and a lease taken beyond it would sit idle until it expires.
        for (int i = 0; i < _options.ParseBatchSize; i++)
        {
            var lease = await _queue.TryDequeueAsync(Consumer, ct).ConfigureAwait(false);
            if (lease is null)
                yield break;
            var keeper = new LeaseKeeper(_queue, lease, _renewEvery, _logger);
            var capture = ToPending(lease.Item) with { Receipt = keeper };
            Log.CaptureLeased(_logger, lease.Item.Sha256, Consumer, lease.Attempt);
            try
            {
                yield return capture;
            }
            finally
            {
                // Still held when the stage stopped early (cancellation, an exception): give it back at once
                // rather than make it wait out the lease.
                if (!keeper.Completed)
                    await keeper.ReleaseAsync("worker stopped before finishing the capture").ConfigureAwait(false);
            }
        }
    }

    public async ValueTask CompleteAsync(PendingCapture capture, CaptureOutcome outcome, string? reason, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(capture);
        if (capture.Receipt is not LeaseKeeper keeper)
            throw new ArgumentException("The capture was not listed by this source.", nameof(capture));
        // The ledger has the outcome (packets file renamed into place first): whatever it was, the queue is done.
        var acked = await keeper.AckAsync(ct).ConfigureAwait(false);
        Log.CaptureCompleted(_logger, capture.Sha256, outcome, acked);
    }

    /// <summary>
    /// Where this worker finds the capture: always the place the data directory's layout gives its probe id, date and
    /// SHA-256 (<see cref="Survey6.Data.DataLayout.CapturePath"/>), never the path the item names, since whoever can
    /// write to the queue could name any file (and the cleanup stage deletes parsed captures). The item must name the
    /// same capture, <c>captures/PROBE/DATE/SHA.pcapng</c> under the C&amp;C's data directory (which a worker on another
    /// host may mount elsewhere); anything else comes back with <see cref="PendingCapture.Refusal"/> saying why.
    /// </summary>
    public PendingCapture ToPending(CaptureEnqueued item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var layout = _options.Layout;
        var storedPath = item.StoredPath ?? "";
        var dateFolder = Path.GetFileName(Path.GetDirectoryName(storedPath));
        var date = DataLayout.TryParseDateFolder(dateFolder, out var d) ? d : DateOnly.FromDateTime(item.ReceivedAt.UtcDateTime);
        if (!DataLayout.IsValidProbeId(item.ProbeId) || !DataLayout.IsSha256(item.Sha256))
        {
            return new PendingCapture(Bounded(item.Sha256), Bounded(item.ProbeId), date, "", null)
            {
                Refusal = $"refused queue item: probe id '{Bounded(item.ProbeId)}' or SHA-256 '{Bounded(item.Sha256)}' cannot name a stored capture; no file was read",
            };
        }

        var capturePath = layout.CapturePath(item.ProbeId, date, item.Sha256);
        var manifestPath = layout.CaptureManifestPath(item.ProbeId, date, item.Sha256);
        var expected = Path.GetRelativePath(layout.Root, capturePath);
        if (!NamesSameCapture(storedPath, expected) || (item.ManifestPath is { } m && Path.GetFileName(m) != Path.GetFileName(manifestPath)))
        {
            return new PendingCapture(item.Sha256, item.ProbeId, date, capturePath, null)
            {
                Refusal = $"refused queue item: it names '{Bounded(storedPath)}' (manifest '{Bounded(item.ManifestPath)}'), " +
                    $"but probe {item.ProbeId}'s capture {item.Sha256} is stored as DATA/{expected}; no file was read or deleted",
            };
        }
        return new PendingCapture(item.Sha256, item.ProbeId, date, capturePath, item.ManifestPath is null ? null : manifestPath);
    }

    /// <summary>Whether <paramref name="storedPath"/> is an absolute path ending in <paramref name="relative"/>, segment by segment, with no <c>..</c> or <c>.</c>.</summary>
    private static bool NamesSameCapture(string storedPath, string relative)
    {
        if (!Path.IsPathFullyQualified(storedPath))
            return false;
        var segments = storedPath.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        if (segments.Any(s => s is "." or ".."))
            return false;
        var wanted = relative.Split(Path.DirectorySeparatorChar);
        return segments.Length >= wanted.Length && segments.AsSpan(segments.Length - wanted.Length).SequenceEqual(wanted, StringComparer.Ordinal);
    }

    /// <summary>Whatever a queue item carries, cut short for a log line or a ledger row.</summary>
    private static string Bounded(string? value) => value is null ? "" : value.Length <= 200 ? value : value[..200] + "...";

    /// <summary>One lease, renewed in the background until it is acked or released.</summary>
    private sealed class LeaseKeeper : IDisposable
    {
        private readonly IIngestQueue _queue;
        private readonly ILogger _logger;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewing;
        private IngestLease _lease;

        public LeaseKeeper(IIngestQueue queue, IngestLease lease, TimeSpan every, ILogger logger)
        {
            _queue = queue;
            _lease = lease;
            _logger = logger;
            _renewing = RenewAsync(every, _stop.Token);
        }

        public bool Completed { get; private set; }

        public async Task<bool> AckAsync(CancellationToken ct)
        {
            var lease = await StopAsync().ConfigureAwait(false);
            return await _queue.AckAsync(lease, ct).ConfigureAwait(false);
        }

        public async Task ReleaseAsync(string reason)
        {
            var lease = await StopAsync().ConfigureAwait(false);
            try
            {
                await _queue.NackAsync(lease, reason, TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The lease runs out on its own; another worker takes the capture then.
                Log.LeaseReleaseFailed(_logger, e, lease.Item.Sha256);
            }
        }

        private async Task<IngestLease> StopAsync()
        {
            Completed = true;
            await _stop.CancelAsync().ConfigureAwait(false);
            await _renewing.ConfigureAwait(false);
            Dispose();
            return Volatile.Read(ref _lease);
        }

        public void Dispose() => _stop.Dispose();

        private async Task RenewAsync(TimeSpan every, CancellationToken ct)
        {
            try
            {
                while (true)
                {
                    await Task.Delay(every, ct).ConfigureAwait(false);
                    try
                    {
                        var renewed = await _queue.RenewAsync(Volatile.Read(ref _lease), ct).ConfigureAwait(false);
                        if (renewed is null)
                        {
                            // Taken over: finishing is harmless (same bytes, atomic rename), the ack will say false.
                            Log.LeaseLost(_logger, _lease.Item.Sha256);
                            return;
                        }
                        Volatile.Write(ref _lease, renewed);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        // A queue hiccup: try again next round; the lease has two more rounds before it runs out.
                        Log.LeaseRenewFailed(_logger, e, _lease.Item.Sha256);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }
        }
    }
}

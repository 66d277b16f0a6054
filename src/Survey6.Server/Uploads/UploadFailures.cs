using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.Diagnostics;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// Uploads that fail for a reason on the server's side (a disk write error, the ingest queue or database down, the
/// free-disk floor), not the probe's own bad request. Each probe's repeating failure is logged once per cause with
/// <see cref="RecurringFailure"/>, then with its count every <see cref="UploadFailureOptions.LogInterval"/> and when it
/// clears. After <see cref="UploadFailureOptions.DegradedAfter"/> in a row the server is degraded
/// (<see cref="Reason"/>, reported by <see cref="Metrics.ServerHealth"/>) until the next acknowledged upload. The reason
/// is also kept in state.db (<see cref="SettingsStore.UploadFailures"/>) for <c>survey6 server probes</c>.
/// </summary>
public sealed class UploadFailures(IOptions<UploadFailureOptions> options, SettingsStore settings, TimeProvider time, ILogger<UploadFailures> logger)
{
    private readonly UploadFailureOptions _options = options.Value;
    private readonly ConcurrentDictionary<string, RecurringFailure> _byProbe = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly Lock _recordGate = new();
    private readonly HashSet<string> _probes = new(StringComparer.Ordinal);
    private long _inARow;
    private DateTimeOffset _since;
    private string _lastCause = "";
    private string _lastProbe = "";
    private string? _reason;
    private RecurringFailure? _recordFailures;

    /// <summary>Uploads that failed on the server since the last acknowledged one.</summary>
    public long InARow
    {
        get
        {
            lock (_gate)
                return _inARow;
        }
    }

    /// <summary>Why the server is degraded by failing uploads, or null.</summary>
    public string? Reason
    {
        get
        {
            lock (_gate)
                return _reason;
        }
    }

    /// <summary>An upload from <paramref name="probeId"/> failed on the server.</summary>
    /// <param name="condition">What the failure is, without file names (one log line per condition): <c>IOException/30</c>, <c>server-disk-low</c>.</param>
    /// <param name="cause">What happened, for people.</param>
    public void Failed(string probeId, string condition, string cause)
    {
        var occurrence = _byProbe.GetOrAdd(probeId, _ => new RecurringFailure(time, _options.LogInterval)).Report(condition);
        if (occurrence.Total == 1)
            UploadLog.FailingOnServer(logger, probeId, cause);
        else if (occurrence.Log)
            UploadLog.StillFailingOnServer(logger, probeId, occurrence.Total, occurrence.Since, occurrence.Unlogged, cause);

        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (_inARow++ == 0)
                _since = now;
            _probes.Add(probeId);
            _lastCause = cause;
            _lastProbe = probeId;
            if (_inARow < _options.DegradedAfter)
                return;
            if (_reason is null)
                UploadLog.Degraded(logger, DescribeLocked());
            _reason = DescribeLocked();
        }

        Record();
    }

    /// <summary>An upload from <paramref name="probeId"/> was acknowledged: the store works again.</summary>
    public void Succeeded(string probeId)
    {
        if (_byProbe.TryGetValue(probeId, out var failures) && failures.Clear() is > 1 and var failed)
            UploadLog.RecoveredOnServer(logger, probeId, failed);

        long inARow;
        lock (_gate)
        {
            if (_inARow == 0)
                return;
            inARow = _inARow;
            var wasDegraded = _reason is not null;
            _inARow = 0;
            _probes.Clear();
            _reason = null;
            if (!wasDegraded)
                return;
        }

        UploadLog.NoLongerDegraded(logger, inARow, probeId);
        Record();
    }

    private string DescribeLocked() => string.Create(CultureInfo.InvariantCulture,
        $"{_inARow} uploads in a row failed on the server since {_since:yyyy-MM-ddTHH:mm:ssZ}, from {_probes.Count} probe{(_probes.Count == 1 ? "" : "s")}; the last ({_lastProbe}): {_lastCause}; clears at the next stored upload");

    /// <summary>Writes the reason as it is now (empty when healthy); one writer at a time, so the last write is the latest state.</summary>
    private void Record()
    {
        // At every failure while degraded, so the count there is current: a failed upload costs far more than this write.
        try
        {
            lock (_recordGate)
                settings.Set(SettingsStore.UploadFailures, Reason ?? "");
            Volatile.Read(ref _recordFailures)?.Clear();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The database may be what fails; health in this process still says so. Logged once per kind, like the uploads.
            var failures = LazyInitializer.EnsureInitialized(ref _recordFailures, () => new RecurringFailure(time, _options.LogInterval));
            if (failures.Report(e.GetType().Name).Log)
                UploadLog.RecordFailed(logger, e.Message);
        }
    }
}

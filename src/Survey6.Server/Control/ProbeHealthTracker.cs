using Google.Protobuf.WellKnownTypes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Options;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>What the stream needs to acknowledge a heartbeat, known without touching the database.</summary>
internal readonly record struct HeartbeatOutcome(bool Revoked, TimeSpan? ClockSkew);

/// <summary>A heartbeat acknowledged and waiting for the writer.</summary>
internal sealed record PendingHeartbeat(string ProbeId, Heartbeat Heartbeat, DateTimeOffset ReceivedAt);

/// <summary>
/// Keeps probes.state in step with the health rules: records heartbeats (status, per-minute
/// rollup, state) and re-evaluates probes on the server's clock. A heartbeat is acknowledged from
/// memory; a single writer stores queued heartbeats in batches, one transaction each, so 1,000
/// heartbeats a second cost a few commits rather than a thousand. Reads that must see every
/// acknowledged heartbeat (the evaluator, <see cref="ProbeHealthQuery"/>) call
/// <see cref="WaitUntilStored"/> first. Every state change is an event with its reasons and a
/// <see cref="ProbeChangeKind.StateChanged"/> notification.
/// </summary>
internal sealed class ProbeHealthTracker
{
    private static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxInterval = TimeSpan.FromHours(1);
    private static readonly TimeSpan MaxRoundTrip = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(30);

    private readonly StateDatabase _database;
    private readonly TimeProvider _time;
    private readonly IOptions<HealthOptions> _health;
    private readonly IOptions<PolicyOptions> _policy;
    private readonly ControlOptions _control;
    private readonly ProbeNotifier _notifier;
    private readonly ProbeRevocations _revocations;
    private readonly ProbeConnections _connections;
    private readonly ServerCounters _counters;
    private readonly ILogger<ProbeHealthTracker> _logger;
    // Guarded by _enqueueLock; the writer waits on it (Monitor) for work.
    private readonly Queue<PendingHeartbeat> _queue = new();
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _closed;
    private bool _hurry; // someone waits: skip the batch delay
    private readonly object _enqueueLock = new(); // Monitor: also what the writer sleeps on
    private readonly object _storedLock = new(); // Monitor: waiters sleep until the writer pulses
    private long _enqueued;
    private long _stored; // written, dropped by a failed write, or skipped: no longer pending
    private long _dropped;

    public ProbeHealthTracker(
        StateDatabase database,
        TimeProvider time,
        IOptions<HealthOptions> health,
        IOptions<PolicyOptions> policy,
        IOptions<ControlOptions> control,
        ProbeNotifier notifier,
        ProbeRevocations revocations,
        ProbeConnections connections,
        ServerCounters counters,
        ILogger<ProbeHealthTracker> logger)
    {
        _database = database;
        _time = time;
        _health = health;
        _policy = policy;
        _control = control.Value;
        _notifier = notifier;
        _revocations = revocations;
        _connections = connections;
        _counters = counters;
        _logger = logger;
        notifier.BeforeSubscribe = () => WaitUntilStored();
    }

    private TimeSpan DefaultInterval => _policy.Value.HeartbeatInterval;

    /// <summary>Heartbeats acknowledged and not yet stored (nor dropped).</summary>
    public long Pending => Volatile.Read(ref _enqueued) - Volatile.Read(ref _stored);

    /// <summary>
    /// Queues a heartbeat for the writer and returns what the acknowledgement needs. Does no I/O:
    /// the probe's revocation is known in memory, and skew depends on this heartbeat alone.
    /// </summary>
    public HeartbeatOutcome RecordHeartbeat(string probeId, Heartbeat heartbeat, DateTimeOffset receivedAt)
    {
        if (_revocations.IsProbeRevoked(probeId))
            return new HeartbeatOutcome(true, null);
        Enrollment.HostFactLimits.Cut(heartbeat); // bounds what a probe can make the server store
        _counters.Increment(ControlCounters.Heartbeats);
        bool queued;
        lock (_enqueueLock)
        {
            // Counted under the lock so that the count matches the queue's order (WaitUntilStored relies on it).
            queued = !_closed && _queue.Count < _control.HeartbeatQueueCapacity;
            if (queued)
            {
                _queue.Enqueue(new PendingHeartbeat(probeId, heartbeat, receivedAt));
                _enqueued++;
                if (_queue.Count == 1)
                    Monitor.Pulse(_enqueueLock);
            }
        }

        if (!queued)
            Dropped(probeId);
        return new HeartbeatOutcome(false, Skew(heartbeat, receivedAt));
    }

    /// <summary>
    /// Blocks until every heartbeat acknowledged before the call is stored (or given up on), so
    /// what follows reads them from state.db. Returns at once when nothing is pending.
    /// </summary>
    public bool WaitUntilStored(TimeSpan? timeout = null)
    {
        var target = Volatile.Read(ref _enqueued);
        if (Volatile.Read(ref _stored) >= target)
            return true;
        Hurry();
        var deadline = Environment.TickCount64 + (long)(timeout ?? FlushTimeout).TotalMilliseconds;
        lock (_storedLock)
        {
            while (_stored < target)
            {
                var left = deadline - Environment.TickCount64;
                if (left <= 0 || _writerDone.Task.IsCompleted)
                    return _stored >= target;
                Monitor.Wait(_storedLock, TimeSpan.FromMilliseconds(Math.Min(left, 200)));
            }
        }

        return true;
    }

    /// <summary>
    /// Starts the writer on its own thread (it must not depend on the thread pool, whose threads may
    /// be blocked in <see cref="WaitUntilStored"/>); the task completes once <see cref="CompleteWriting"/>
    /// was called and everything queued is stored.
    /// </summary>
    internal Task StartWriter()
    {
        var thread = new Thread(WriterLoop) { IsBackground = true, Name = "survey6 heartbeat writer" };
        thread.Start();
        return _writerDone.Task;
    }

    private void WriterLoop()
    {
        var batch = new List<PendingHeartbeat>(Math.Min(_control.MaxHeartbeatBatch, 4096));
        try
        {
            while (true)
            {
                bool closed;
                lock (_enqueueLock)
                {
                    while (_queue.Count == 0 && !_closed)
                        Monitor.Wait(_enqueueLock);
                    if (_queue.Count == 0)
                        return; // closed and drained
                    closed = _closed;
                }

                // Let a batch gather, unless someone waits for it or the server stops.
                lock (_enqueueLock)
                {
                    if (!closed && !_hurry && _control.HeartbeatBatchDelay > TimeSpan.Zero)
                        Monitor.Wait(_enqueueLock, _control.HeartbeatBatchDelay);
                    _hurry = false;
                }

                while (true)
                {
                    batch.Clear();
                    lock (_enqueueLock)
                    {
                        while (batch.Count < _control.MaxHeartbeatBatch && _queue.TryDequeue(out var item))
                            batch.Add(item);
                    }

                    if (batch.Count == 0)
                        break;
                    StoreBatch(batch);
                }
            }
        }
        finally
        {
            _writerDone.TrySetResult();
            lock (_storedLock)
                Monitor.PulseAll(_storedLock);
        }
    }

    /// <summary>Stops taking heartbeats; the writer stores the queued ones and ends.</summary>
    internal void CompleteWriting()
    {
        lock (_enqueueLock)
        {
            _closed = true;
            Monitor.PulseAll(_enqueueLock);
        }
    }

    private void Hurry()
    {
        lock (_enqueueLock)
        {
            _hurry = true;
            Monitor.PulseAll(_enqueueLock);
        }
    }

    private void StoreBatch(List<PendingHeartbeat> batch)
    {
        var changes = new List<ProbeChange>(batch.Count + 4);
        var revoked = new List<string>();
        try
        {
            using (var connection = _database.Open())
            using (var transaction = connection.BeginTransaction())
            {
                var rows = new Dictionary<string, ProbeStatusRow?>(StringComparer.Ordinal);
                foreach (var (probeId, heartbeat, receivedAt) in batch)
                {
                    if (!rows.TryGetValue(probeId, out var row))
                        row = StatusRows.Read(connection, transaction, probeId);
                    if (row is null || row.StoredState == ProbeStates.Revoked)
                    {
                        rows[probeId] = row;
                        revoked.Add(probeId);
                        continue;
                    }

                    var figures = Figures(heartbeat, row.LastHeartbeat, row.LastHeartbeatAt, receivedAt);
                    StatusRows.WriteHeartbeat(connection, transaction, probeId, receivedAt, figures, heartbeat);
                    StatusRows.AddToMinute(connection, transaction, probeId, receivedAt, figures, heartbeat);
                    // What the row now holds, without reading it back.
                    var updated = row with
                    {
                        FirstHeartbeatAt = row.FirstHeartbeatAt ?? receivedAt,
                        LastHeartbeatAt = receivedAt,
                        HeartbeatInterval = figures.Interval,
                        ReportedState = ReportedStates.From(heartbeat.State),
                        ReportedReason = heartbeat.StateReason,
                        ClockSkew = figures.ClockSkew,
                        RoundTrip = figures.RoundTrip,
                        PacketsPerSecond = figures.PacketsPerSecond,
                        DropRatio = figures.DropRatio,
                        UploadBytesPerSecond = figures.UploadBytesPerSecond,
                        LastHeartbeat = heartbeat,
                    };
                    // Evaluated as of the heartbeat's arrival, so a writer running late cannot call a live probe offline.
                    var state = Apply(connection, transaction, updated, changes, receivedAt);
                    rows[probeId] = updated with { StoredState = state, StateSince = state != row.StoredState ? receivedAt : row.StateSince };
                    changes.Add(new ProbeChange(ProbeChangeKind.Heartbeat, probeId, receivedAt) { State = state });
                }

                transaction.Commit();
            }

            _counters.Increment(ControlCounters.HeartbeatBatches);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _counters.Add(ControlCounters.HeartbeatsDropped, batch.Count);
            ControlLog.HeartbeatWriteFailed(_logger, batch.Count, e);
            changes.Clear();
        }
        try
        {
            // Before the batch counts as stored: whoever waited for it (a new subscriber) must not see its changes afterwards.
            Publish(changes);
            // Revoked by another process since the stream opened (the poller will announce it too).
            foreach (var probeId in revoked.Distinct(StringComparer.Ordinal))
            {
                _revocations.ProbeRevoked(probeId);
                _connections.Close(probeId, ControlService.Revoked);
            }
        }
        finally
        {
            lock (_storedLock)
            {
                _stored += batch.Count;
                Monitor.PulseAll(_storedLock);
            }
        }
    }

    private void Dropped(string probeId)
    {
        var dropped = Interlocked.Increment(ref _dropped);
        _counters.Increment(ControlCounters.HeartbeatsDropped);
        if (Volatile.Read(ref _closed))
            ControlLog.HeartbeatAfterStop(_logger, probeId);
        else if ((dropped & (dropped - 1)) == 0) // 1, 2, 4, 8, ...: visible in the log without flooding it
            ControlLog.HeartbeatsDropped(_logger, _control.HeartbeatQueueCapacity, dropped);
    }


    /// <summary>Re-evaluates one probe now (after an operator's suspend or resume).</summary>
    public void Reevaluate(string probeId)
    {
        WaitUntilStored();
        var changes = new List<ProbeChange>(1);
        using (var connection = _database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            if (StatusRows.Read(connection, transaction, probeId) is { } row && row.StoredState != ProbeStates.Revoked)
                Apply(connection, transaction, row, changes, _time.GetUtcNow());
            transaction.Commit();
        }

        Publish(changes);
    }

    /// <summary>Re-evaluates every probe that is not revoked; this is how silent probes become offline, then inactive.</summary>
    public int EvaluateAll()
    {
        WaitUntilStored();
        var changes = new List<ProbeChange>();
        using (var connection = _database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            foreach (var row in StatusRows.ReadAll(connection, transaction, exceptRevoked: true))
                Apply(connection, transaction, row, changes, _time.GetUtcNow());
            transaction.Commit();
        }

        Publish(changes);
        return changes.Count;
    }

    private string Apply(SqliteConnection connection, SqliteTransaction transaction, ProbeStatusRow row, List<ProbeChange> changes, DateTimeOffset now)
    {
        var (state, reasons) = ProbeHealthRules.Evaluate(row, now, _health.Value, DefaultInterval);
        if (state == row.StoredState)
            return state;
        if (!StatusRows.ChangeState(connection, transaction, row.ProbeId, row.StoredState, state, now))
            return row.StoredState;
        var because = reasons.Count == 0 ? "" : ": " + string.Join("; ", reasons);
        EventStore.Append(connection, transaction, _time, EventKinds.ProbeStateChanged, row.ProbeId, null, $"{row.StoredState} -> {state}{because}");
        ControlLog.StateChanged(_logger, row.ProbeId, row.StoredState, state, because);
        changes.Add(new ProbeChange(ProbeChangeKind.StateChanged, row.ProbeId, now) { State = state, PreviousState = row.StoredState, Reasons = reasons });
        return state;
    }

    private void Publish(List<ProbeChange> changes)
    {
        foreach (var change in changes)
            _notifier.Publish(change);
    }

    /// <summary>
    /// Rates and skew from this heartbeat and the previous one. Counters are cumulative per probe
    /// process and count from zero after a restart. Intervals are measured on the server's clock only.
    /// </summary>
    internal static HeartbeatFigures Figures(Heartbeat heartbeat, Heartbeat? previous, DateTimeOffset? previousAt, DateTimeOffset receivedAt)
    {
        TimeSpan? interval = TryDuration(heartbeat.HeartbeatInterval) is { } i && i > TimeSpan.Zero
            ? TimeSpan.FromTicks(Math.Clamp(i.Ticks, MinInterval.Ticks, MaxInterval.Ticks)) : null;
        TimeSpan? roundTrip = TryDuration(heartbeat.RoundTrip) is { } r && r >= TimeSpan.Zero && r <= MaxRoundTrip ? r : null;
        var skew = Skew(heartbeat, receivedAt);

        var capture = heartbeat.Capture ?? new CaptureCounters();
        var before = previous?.Capture ?? new CaptureCounters();
        var upload = heartbeat.Upload ?? new UploadCounters();
        var uploadBefore = previous?.Upload ?? new UploadCounters();
        // Any counter going down means the probe process restarted: all of them start from zero again.
        if (capture.Received < before.Received || capture.KernelDropped < before.KernelDropped || capture.InterfaceDropped < before.InterfaceDropped
            || capture.QueueDropped < before.QueueDropped || upload.FilesUploaded < uploadBefore.FilesUploaded
            || upload.BytesUploaded < uploadBefore.BytesUploaded || upload.Failures < uploadBefore.Failures)
        {
            before = new CaptureCounters();
            uploadBefore = new UploadCounters();
        }

        var received = capture.Received - before.Received;
        var kernel = capture.KernelDropped - before.KernelDropped;
        var nic = capture.InterfaceDropped - before.InterfaceDropped;
        var queue = capture.QueueDropped - before.QueueDropped;
        var files = upload.FilesUploaded - uploadBefore.FilesUploaded;
        var bytes = upload.BytesUploaded - uploadBefore.BytesUploaded;
        var failures = upload.Failures - uploadBefore.Failures;

        double dropped = (double)kernel + nic + queue;
        var dropRatio = received + dropped > 0 ? dropped / (received + dropped) : 0;
        var seconds = previousAt is { } at ? (receivedAt - at).TotalSeconds : 0;
        return new HeartbeatFigures(
            interval, skew, roundTrip, received, kernel, nic, queue, files, bytes, failures,
            seconds > 0 ? received / seconds : 0, dropRatio, seconds > 0 ? bytes / seconds : 0);
    }

    /// <summary>Probe clock minus server clock; the probe stamped its clock about half a round trip before the heartbeat arrived.</summary>
    internal static TimeSpan? Skew(Heartbeat heartbeat, DateTimeOffset receivedAt)
    {
        TimeSpan? roundTrip = TryDuration(heartbeat.RoundTrip) is { } r && r >= TimeSpan.Zero && r <= MaxRoundTrip ? r : null;
        return TryTime(heartbeat.ProbeClock) is { } clock ? clock - (receivedAt - (roundTrip ?? TimeSpan.Zero) / 2) : null;
    }

    private static DateTimeOffset? TryTime(Timestamp? timestamp)
    {
        // ToDateTimeOffset throws outside year 1..9999 or with bad nanos; a probe's bad clock is data, not an error.
        if (timestamp is null || timestamp.Nanos is < 0 or > 999_999_999 || timestamp.Seconds is < -62_135_596_800 or > 253_402_300_799)
            return null;
        return timestamp.ToDateTimeOffset();
    }

    private static TimeSpan? TryDuration(Duration? duration)
    {
        if (duration is null || Math.Abs(duration.Seconds) > 10_000L * 86_400 || duration.Nanos is < -999_999_999 or > 999_999_999)
            return null;
        return duration.ToTimeSpan();
    }
}

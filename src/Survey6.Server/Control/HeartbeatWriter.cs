using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>A heartbeat acknowledged and waiting for the writer.</summary>
internal sealed record PendingHeartbeat(string ProbeId, Heartbeat Heartbeat, DateTimeOffset ReceivedAt);

/// <summary>How <see cref="HeartbeatWriter.WaitUntilStoredAsync"/> ended.</summary>
internal enum HeartbeatWait
{
    /// <summary>Every heartbeat acknowledged before the call is stored (or was given up on after a failed write, counted as dropped).</summary>
    Stored,
    /// <summary>The writer did not get there in time (state.db locked or slow); what is stored so far is all a read sees.</summary>
    TimedOut,
    /// <summary>The writer has ended with heartbeats still queued: nothing will store them.</summary>
    WriterStopped,
}

/// <summary>
/// The single writer of heartbeats to state.db. The control streams queue heartbeats here and
/// acknowledge them from memory; one thread stores what has gathered after
/// <see cref="ControlOptions.HeartbeatBatchDelay"/> in one transaction (status row, minute rollup,
/// state change through <see cref="ProbeHealthEvaluator"/>), so 1,000 heartbeats a second cost a
/// few commits rather than a thousand. Every queued heartbeat has a sequence number; readers that
/// must see every acknowledged heartbeat await <see cref="WaitUntilStoredAsync"/>, which completes
/// once the batch holding the last one queued before the call is committed.
/// </summary>
internal sealed class HeartbeatWriter
{
    private static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromSeconds(30);

    private readonly StateDatabase _database;
    private readonly ControlOptions _control;
    private readonly ProbeHealthEvaluator _evaluator;
    private readonly ProbeRevocations _revocations;
    private readonly ProbeConnections _connections;
    private readonly ServerCounters _counters;
    private readonly ILogger<HeartbeatWriter> _logger;
    // Guarded by _queueLock; the writer thread sleeps on it (Monitor) until there is work.
    private readonly Queue<PendingHeartbeat> _queue = new();
    private readonly object _queueLock = new();
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _started;
    private bool _closed;
    private bool _hurry; // someone waits: skip the batch delay
    private long _queued; // sequence number of the last heartbeat queued; written under _queueLock
    private long _stored; // heartbeats no longer pending (written, or dropped by a failed write); written by the writer thread only
    private long _dropped;
    // Completed (and replaced) after every batch, so waiters look at _stored again; continuations never run on the writer thread.
    private TaskCompletionSource _batchDone = NewSignal();

    public HeartbeatWriter(
        StateDatabase database,
        IOptions<ControlOptions> control,
        ProbeHealthEvaluator evaluator,
        ProbeRevocations revocations,
        ProbeConnections connections,
        ServerCounters counters,
        ILogger<HeartbeatWriter> logger)
    {
        _database = database;
        _control = control.Value;
        _evaluator = evaluator;
        _revocations = revocations;
        _connections = connections;
        _counters = counters;
        _logger = logger;
    }

    /// <summary>Heartbeats acknowledged and not yet stored (nor dropped).</summary>
    public long Pending => Volatile.Read(ref _queued) - Volatile.Read(ref _stored);

    /// <summary>
    /// Queues a heartbeat; false (counted as dropped and logged) when the queue is full or the writer is
    /// closed. Never blocks on I/O: the lock is held only to add to the queue.
    /// </summary>
    public bool Enqueue(PendingHeartbeat heartbeat)
    {
        bool queued;
        lock (_queueLock)
        {
            // Numbered under the lock, so that the numbers follow the queue's order (WaitUntilStoredAsync relies on it).
            queued = !_closed && _queue.Count < _control.HeartbeatQueueCapacity;
            if (queued)
            {
                _queue.Enqueue(heartbeat);
                Volatile.Write(ref _queued, _queued + 1);
                if (_queue.Count == 1)
                    Monitor.Pulse(_queueLock);
            }
        }

        if (!queued)
            Dropped(heartbeat.ProbeId);
        return queued;
    }

    /// <summary>
    /// Completes once every heartbeat queued before the call is stored (or given up on), so what follows
    /// reads them from state.db; at once, without allocating, when nothing is pending. Makes the writer
    /// skip its batch delay. Ends with <see cref="HeartbeatWait.TimedOut"/> after <paramref name="timeout"/>
    /// (30 s by default) and with <see cref="HeartbeatWait.WriterStopped"/> if the writer has ended; a
    /// cancelled <paramref name="cancellationToken"/> throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public ValueTask<HeartbeatWait> WaitUntilStoredAsync(CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        var target = Volatile.Read(ref _queued);
        if (Volatile.Read(ref _stored) >= target)
            return new ValueTask<HeartbeatWait>(HeartbeatWait.Stored);
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<HeartbeatWait>(cancellationToken);
        return WaitAsync(target, timeout ?? DefaultWaitTimeout, cancellationToken);
    }

    private async ValueTask<HeartbeatWait> WaitAsync(long target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Hurry();
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            // The signal first: a batch that ends after this read completes it, one that ended before has raised _stored.
            var signal = Volatile.Read(ref _batchDone);
            if (Volatile.Read(ref _stored) >= target)
                return HeartbeatWait.Stored;
            if (_writerDone.Task.IsCompleted)
                return HeartbeatWait.WriterStopped;
            var left = deadline - Environment.TickCount64;
            if (left <= 0)
                return HeartbeatWait.TimedOut;
            try
            {
                await signal.Task.WaitAsync(TimeSpan.FromMilliseconds(left), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Looked at once more at the top of the loop.
            }
        }
    }

    /// <summary>
    /// Starts the writer on its own thread: its SQLite work is synchronous and runs for the server's
    /// lifetime, which the thread pool is not for. The task completes once <see cref="CompleteWriting"/>
    /// was called and everything queued is stored.
    /// </summary>
    public Task StartWriter()
    {
        lock (_queueLock)
        {
            if (_started || _closed)
                throw new InvalidOperationException("the heartbeat writer runs once");
            _started = true;
        }

        var thread = new Thread(WriterLoop) { IsBackground = true, Name = "survey6 heartbeat writer" };
        thread.Start();
        return _writerDone.Task;
    }

    /// <summary>Stops taking heartbeats; the writer stores the queued ones and ends (at once if it never started).</summary>
    public void CompleteWriting()
    {
        bool started;
        lock (_queueLock)
        {
            _closed = true;
            started = _started;
            Monitor.PulseAll(_queueLock);
        }

        if (!started)
            Ended();
    }

    private void WriterLoop()
    {
        var batch = new List<PendingHeartbeat>(Math.Min(_control.MaxHeartbeatBatch, 4096));
        try
        {
            while (true)
            {
                bool closed;
                lock (_queueLock)
                {
                    while (_queue.Count == 0 && !_closed)
                        Monitor.Wait(_queueLock);
                    if (_queue.Count == 0)
                        return; // closed and drained
                    closed = _closed;
                }

                // Let a batch gather, unless someone waits for it or the server stops.
                lock (_queueLock)
                {
                    if (!closed && !_hurry && _control.HeartbeatBatchDelay > TimeSpan.Zero)
                        Monitor.Wait(_queueLock, _control.HeartbeatBatchDelay);
                    _hurry = false;
                }

                while (true)
                {
                    batch.Clear();
                    lock (_queueLock)
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
            Ended();
        }
    }

    private void Ended()
    {
        _writerDone.TrySetResult();
        Interlocked.Exchange(ref _batchDone, NewSignal()).TrySetResult();
    }

    private void Hurry()
    {
        lock (_queueLock)
        {
            _hurry = true;
            Monitor.PulseAll(_queueLock);
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

                    var figures = HeartbeatRecorder.Figures(heartbeat, row.LastHeartbeat, row.LastHeartbeatAt, receivedAt);
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
                    var state = _evaluator.Apply(connection, transaction, updated, changes, receivedAt);
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
            _evaluator.Publish(changes);
            // Revoked by another process since the stream opened (the poller will announce it too).
            foreach (var probeId in revoked.Distinct(StringComparer.Ordinal))
            {
                _revocations.ProbeRevoked(probeId);
                _connections.Close(probeId, ControlService.Revoked);
            }
        }
        finally
        {
            Volatile.Write(ref _stored, _stored + batch.Count);
            Interlocked.Exchange(ref _batchDone, NewSignal()).TrySetResult();
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

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

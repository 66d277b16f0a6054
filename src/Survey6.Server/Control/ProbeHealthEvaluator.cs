using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Server.Options;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>
/// Keeps probes.state in step with <see cref="ProbeHealthRules"/>: applies them to a probe's stored
/// status, and records every state change as an event with its reasons and a
/// <see cref="ProbeChangeKind.StateChanged"/> notification. <see cref="HeartbeatWriter"/> applies it to
/// each heartbeat inside its batch; <see cref="ControlBackgroundService"/> re-evaluates probes on the
/// server's clock, after awaiting the writer, so that no acknowledged heartbeat is missed.
/// </summary>
internal sealed class ProbeHealthEvaluator(
    StateDatabase database,
    TimeProvider time,
    IOptions<HealthOptions> health,
    IOptions<PolicyOptions> policy,
    ProbeNotifier notifier,
    ILogger<ProbeHealthEvaluator> logger)
{
    /// <summary>Re-evaluates one probe now (after an operator's suspend or resume).</summary>
    public void Reevaluate(string probeId)
    {
        var changes = new List<ProbeChange>(1);
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            if (StatusRows.Read(connection, transaction, probeId) is { } row && row.StoredState != ProbeStates.Revoked)
                Apply(connection, transaction, row, changes, time.GetUtcNow());
            transaction.Commit();
        }

        Publish(changes);
    }

    /// <summary>Re-evaluates every probe that is not revoked; this is how silent probes become offline, then inactive.</summary>
    public int EvaluateAll()
    {
        var changes = new List<ProbeChange>();
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            foreach (var row in StatusRows.ReadAll(connection, transaction, exceptRevoked: true))
                Apply(connection, transaction, row, changes, time.GetUtcNow());
            transaction.Commit();
        }

        Publish(changes);
        return changes.Count;
    }

    /// <summary>
    /// Evaluates <paramref name="row"/> as of <paramref name="now"/> and, if the state changed, stores it
    /// with its event inside <paramref name="transaction"/> and adds the change to <paramref name="changes"/>
    /// (publish them with <see cref="Publish"/> after the commit). Returns the state now stored.
    /// </summary>
    public string Apply(SqliteConnection connection, SqliteTransaction transaction, ProbeStatusRow row, List<ProbeChange> changes, DateTimeOffset now)
    {
        var (state, reasons) = ProbeHealthRules.Evaluate(row, now, health.Value, policy.Value.HeartbeatInterval);
        if (state == row.StoredState)
            return state;
        if (!StatusRows.ChangeState(connection, transaction, row.ProbeId, row.StoredState, state, now))
            return row.StoredState;
        var because = reasons.Count == 0 ? "" : ": " + string.Join("; ", reasons);
        EventStore.Append(connection, transaction, time, EventKinds.ProbeStateChanged, row.ProbeId, null, $"{row.StoredState} -> {state}{because}");
        ControlLog.StateChanged(logger, row.ProbeId, row.StoredState, state, because);
        changes.Add(new ProbeChange(ProbeChangeKind.StateChanged, row.ProbeId, now) { State = state, PreviousState = row.StoredState, Reasons = reasons });
        return state;
    }

    public void Publish(List<ProbeChange> changes)
    {
        foreach (var change in changes)
            notifier.Publish(change);
    }
}

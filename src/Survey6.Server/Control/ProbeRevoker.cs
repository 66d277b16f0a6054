using System.Globalization;
using Microsoft.Data.Sqlite;
using Survey6.Server.Api;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>
/// Revokes probes, for every caller (web UI, JSON API, CLI, and a probe that leaves): the one place that writes a
/// revocation. In one
/// transaction the probe's state becomes revoked and every certificate it holds is marked revoked; then this
/// process refuses the probe at once (<see cref="ProbeRevocations"/>) and its control stream is closed
/// (<see cref="ProbeNotifier"/>). Another server process on the same state.db learns it from the event.
/// </summary>
/// <param name="revocations">This process's revocation cache; null in a process that serves no probe (the CLI).</param>
public sealed class ProbeRevoker(StateDatabase database, TimeProvider time, ProbeNotifier notifier, ProbeRevocations? revocations = null)
{
    /// <summary>
    /// Revokes <paramref name="probeId"/>. Revoking again keeps the first revocation's reason and records no new event,
    /// but still revokes every certificate: one issued by a renewal that raced the first revocation must not survive it.
    /// </summary>
    /// <param name="reason">Why, as the operator gave it (may be empty).</param>
    /// <param name="actor">Who: <c>web:admin</c>, <c>api-token …</c>, <c>cli:USER</c>.</param>
    /// <param name="remote">The caller's address, when it came over the network.</param>
    public ProbeRevokeOutcome Revoke(string probeId, string reason, string actor, string? remote = null)
    {
        ArgumentNullException.ThrowIfNull(probeId);
        ArgumentNullException.ThrowIfNull(reason);
        ArgumentNullException.ThrowIfNull(actor);
        return Write(probeId, Describe(reason, actor), EventKinds.ProbeRevoked, remote);
    }

    /// <summary>
    /// Revokes <paramref name="probeId"/> at its own request (Enrollment.Leave): as <see cref="Revoke(string, string, string, string?)"/>,
    /// with the probe's reason recorded as it gave it and a <see cref="EventKinds.ProbeLeft"/> event.
    /// </summary>
    public ProbeRevokeOutcome Leave(string probeId, string reason, string? remote = null)
    {
        ArgumentNullException.ThrowIfNull(probeId);
        ArgumentNullException.ThrowIfNull(reason);
        return Write(probeId, reason, EventKinds.ProbeLeft, remote);
    }

    private ProbeRevokeOutcome Write(string probeId, string recorded, string eventKind, string? remote)
    {
        var now = time.GetUtcNow();
        string previous;
        long eventId;
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            if (StateOf(connection, transaction, probeId) is not { } state)
                return ProbeRevokeOutcome.NotFound;
            previous = state;
            using (var update = connection.CreateCommand())
            {
                update.Transaction = transaction;
                update.CommandText = """
                    UPDATE probes SET state = $state, left_at = COALESCE(left_at, $now), leave_reason = COALESCE(leave_reason, $reason) WHERE id = $id;
                    UPDATE certificates SET revoked_at = $now WHERE probe_id = $id AND revoked_at IS NULL;
                    """;
                update.Parameters.AddWithValue("$state", ProbeStates.Revoked);
                update.Parameters.AddWithValue("$now", DbTime.ToText(now));
                update.Parameters.AddWithValue("$reason", recorded);
                update.Parameters.AddWithValue("$id", probeId);
                update.ExecuteNonQuery();
            }

            if (previous == ProbeStates.Revoked)
            {
                transaction.Commit();
                revocations?.ProbeRevoked(probeId);
                return ProbeRevokeOutcome.AlreadyRevoked;
            }

            StatusRows.Ensure(connection, transaction, probeId);
            using (var since = connection.CreateCommand())
            {
                since.Transaction = transaction;
                since.CommandText = "UPDATE probe_status SET state_since = $now WHERE probe_id = $id";
                since.Parameters.AddWithValue("$now", DbTime.ToText(now));
                since.Parameters.AddWithValue("$id", probeId);
                since.ExecuteNonQuery();
            }

            EventStore.Append(connection, transaction, time, eventKind, probeId, remote, recorded);
            eventId = LastRowId(connection, transaction);
            notifier.Claim(eventId);
            transaction.Commit();
        }

        revocations?.ProbeRevoked(probeId); // refused from the next call on, not after the event poller's next look
        notifier.Publish(new ProbeChange(ProbeChangeKind.StateChanged, probeId, now)
        {
            State = ProbeStates.Revoked,
            PreviousState = previous,
            Reasons = [new HealthReason(HealthReasonCodes.Revoked, recorded.Length > 0 ? recorded : "revoked")],
            EventId = eventId,
        });
        return ProbeRevokeOutcome.Revoked;
    }

    /// <summary>What the probe's record and the event say: who revoked it, and why.</summary>
    public static string Describe(string reason, string actor) =>
        (actor.Length == 0 ? "revoked" : $"revoked by {actor}") + (reason.Length == 0 ? "" : ": " + reason);

    private static string? StateOf(SqliteConnection connection, SqliteTransaction transaction, string probeId)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT state FROM probes WHERE id = $id";
        command.Parameters.AddWithValue("$id", probeId);
        return command.ExecuteScalar() as string;
    }

    private static long LastRowId(SqliteConnection connection, SqliteTransaction transaction)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT last_insert_rowid()";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}

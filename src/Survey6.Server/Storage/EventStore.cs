using Microsoft.Data.Sqlite;

namespace Survey6.Server.Storage;

/// <summary>Something that happened, for operators and audits.</summary>
public sealed record ServerEvent(long Id, DateTimeOffset At, string Kind, string? ProbeId, string? Remote, string Detail);

/// <summary>The event kinds written so far; later slices add theirs here.</summary>
public static class EventKinds
{
    public const string ProbeJoined = "probe_joined";
    public const string JoinRefused = "join_refused";
    public const string AuthenticationRefused = "authentication_refused";
    public const string CertificateRenewed = "certificate_renewed";
    public const string ProbeLeft = "probe_left";
    public const string ProbeStateChanged = "probe_state_changed";
    public const string CommandIssued = "command_issued";
    /// <summary>An operator revoked a probe (web UI, API or CLI): its state became revoked and its certificates stopped working.</summary>
    public const string ProbeRevoked = "probe_revoked";
}

/// <summary>The events table: append-only.</summary>
public sealed class EventStore(StateDatabase database, TimeProvider time)
{
    public void Append(string kind, string? probeId, string? remote, string detail)
    {
        using var connection = database.Open();
        Append(connection, null, time, kind, probeId, remote, detail);
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<ServerEvent> Recent(int limit, string? kind = null)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, at, kind, probe_id, remote, detail FROM events WHERE $kind IS NULL OR kind = $kind ORDER BY id DESC LIMIT $limit";
        command.Parameters.AddWithValue("$kind", (object?)kind ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = command.ExecuteReader();
        var events = new List<ServerEvent>();
        while (reader.Read())
        {
            events.Add(new ServerEvent(
                reader.GetInt64(0), DbTime.Parse(reader.GetString(1)), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetString(5)));
        }

        return events;
    }

    internal static void Append(SqliteConnection connection, SqliteTransaction? transaction, TimeProvider time, string kind, string? probeId, string? remote, string detail)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO events (at, kind, probe_id, remote, detail) VALUES ($at, $kind, $probe, $remote, $detail)";
        command.Parameters.AddWithValue("$at", DbTime.ToText(time.GetUtcNow()));
        command.Parameters.AddWithValue("$kind", kind);
        command.Parameters.AddWithValue("$probe", (object?)probeId ?? DBNull.Value);
        command.Parameters.AddWithValue("$remote", (object?)remote ?? DBNull.Value);
        command.Parameters.AddWithValue("$detail", detail);
        command.ExecuteNonQuery();
    }
}

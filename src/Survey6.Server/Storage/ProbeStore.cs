using Microsoft.Data.Sqlite;

namespace Survey6.Server.Storage;

/// <summary>A probe as the server knows it. <see cref="State"/> uses the design's vocabulary (pending, healthy, ..., revoked).</summary>
public sealed record ProbeRecord(
    string Id,
    string State,
    string Hostname,
    IReadOnlyDictionary<string, string> Labels,
    string FactsJson,
    string TokenId,
    DateTimeOffset JoinedAt,
    string JoinedFrom,
    string CertificateSerial,
    DateTimeOffset CertificateNotAfter,
    DateTimeOffset? LeftAt,
    string? LeaveReason);

/// <summary>
/// A certificate issued to a probe. <see cref="ProbeRevoked"/>: its probe is revoked (or gone), which refuses the
/// certificate whatever <see cref="RevokedAt"/> says.
/// </summary>
public sealed record ProbeCertificateRecord(string Serial, string ProbeId, DateTimeOffset IssuedAt, DateTimeOffset NotAfter, DateTimeOffset? RevokedAt, bool ProbeRevoked = false);

/// <summary>The design's probe states; Control's health evaluator moves probes between all but pending and revoked.</summary>
public static class ProbeStates
{
    public const string Pending = "pending";
    public const string Healthy = "healthy";
    public const string Degraded = "degraded";
    public const string Suspended = "suspended";
    public const string Offline = "offline";
    public const string Inactive = "inactive";
    public const string Revoked = "revoked";
}

/// <summary>Probes and their certificates in state.db.</summary>
public sealed class ProbeStore(StateDatabase database, TimeProvider time)
{
    private const string Columns =
        "id, state, hostname, labels_json, facts_json, token_id, joined_at, joined_from, cert_serial, cert_not_after, left_at, leave_reason";

    public IReadOnlyList<ProbeRecord> List()
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM probes ORDER BY joined_at, id";
        using var reader = command.ExecuteReader();
        var probes = new List<ProbeRecord>();
        while (reader.Read())
            probes.Add(Read(reader));
        return probes;
    }

    public ProbeRecord? Get(string id)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM probes WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        return reader.Read() ? Read(reader) : null;
    }

    /// <summary>The certificate with its probe's state, in one indexed read (the authentication path's only query).</summary>
    public ProbeCertificateRecord? FindCertificate(string serial)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT c.serial, c.probe_id, c.issued_at, c.not_after, c.revoked_at, p.state
            FROM certificates c LEFT JOIN probes p ON p.id = c.probe_id WHERE c.serial = $serial
            """;
        command.Parameters.AddWithValue("$serial", serial);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
            return null;
        return new ProbeCertificateRecord(
            reader.GetString(0), reader.GetString(1), DbTime.Parse(reader.GetString(2)), DbTime.Parse(reader.GetString(3)),
            DbTime.ParseNullable(reader.GetValue(4)), ProbeRevoked: reader.IsDBNull(5) || reader.GetString(5) == ProbeStates.Revoked);
    }

    /// <summary>Ids of every revoked probe (revoked or left), for the in-memory revocation set at start.</summary>
    public IReadOnlyList<string> RevokedProbeIds()
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id FROM probes WHERE state = $state";
        command.Parameters.AddWithValue("$state", ProbeStates.Revoked);
        using var reader = command.ExecuteReader();
        var ids = new List<string>();
        while (reader.Read())
            ids.Add(reader.GetString(0));
        return ids;
    }

    /// <summary>
    /// Records a renewed certificate as the probe's current one; older ones stay valid until they expire. False, and
    /// nothing recorded, when the probe is revoked (or gone): the check and the insert share one write transaction, so a
    /// revocation committed first is always seen and one committed later revokes this certificate too.
    /// </summary>
    public bool RecordRenewal(string probeId, string serial, DateTimeOffset notAfter, string remote)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction(); // BEGIN IMMEDIATE: the write lock is held from the state read on
        using (var state = connection.CreateCommand())
        {
            state.Transaction = transaction;
            state.CommandText = "SELECT state FROM probes WHERE id = $id";
            state.Parameters.AddWithValue("$id", probeId);
            if (state.ExecuteScalar() is not string current || current == ProbeStates.Revoked)
                return false; // disposing rolls back
        }

        AddCertificate(connection, transaction, serial, probeId, notAfter);
        using (var update = connection.CreateCommand())
        {
            update.Transaction = transaction;
            update.CommandText = "UPDATE probes SET cert_serial = $serial, cert_not_after = $notAfter WHERE id = $id";
            update.Parameters.AddWithValue("$serial", serial);
            update.Parameters.AddWithValue("$notAfter", DbTime.ToText(notAfter));
            update.Parameters.AddWithValue("$id", probeId);
            update.ExecuteNonQuery();
        }

        EventStore.Append(connection, transaction, time, EventKinds.CertificateRenewed, probeId, remote, "serial " + serial);
        transaction.Commit();
        return true;
    }

    internal static bool Exists(SqliteConnection connection, SqliteTransaction transaction, string id)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT 1 FROM probes WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        return command.ExecuteScalar() is not null;
    }

    internal void Insert(SqliteConnection connection, SqliteTransaction transaction, ProbeRecord probe)
    {
        using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO probes (id, state, hostname, labels_json, facts_json, token_id, joined_at, joined_from, cert_serial, cert_not_after)
                VALUES ($id, $state, $hostname, $labels, $facts, $token, $joined, $from, $serial, $notAfter)
                """;
            command.Parameters.AddWithValue("$id", probe.Id);
            command.Parameters.AddWithValue("$state", probe.State);
            command.Parameters.AddWithValue("$hostname", probe.Hostname);
            command.Parameters.AddWithValue("$labels", Storage.Labels.ToJson(probe.Labels));
            command.Parameters.AddWithValue("$facts", probe.FactsJson);
            command.Parameters.AddWithValue("$token", probe.TokenId);
            command.Parameters.AddWithValue("$joined", DbTime.ToText(probe.JoinedAt));
            command.Parameters.AddWithValue("$from", probe.JoinedFrom);
            command.Parameters.AddWithValue("$serial", probe.CertificateSerial);
            command.Parameters.AddWithValue("$notAfter", DbTime.ToText(probe.CertificateNotAfter));
            command.ExecuteNonQuery();
        }

        AddCertificate(connection, transaction, probe.CertificateSerial, probe.Id, probe.CertificateNotAfter);
    }

    private void AddCertificate(SqliteConnection connection, SqliteTransaction transaction, string serial, string probeId, DateTimeOffset notAfter)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO certificates (serial, probe_id, issued_at, not_after) VALUES ($serial, $probe, $issued, $notAfter)";
        command.Parameters.AddWithValue("$serial", serial);
        command.Parameters.AddWithValue("$probe", probeId);
        command.Parameters.AddWithValue("$issued", DbTime.ToText(time.GetUtcNow()));
        command.Parameters.AddWithValue("$notAfter", DbTime.ToText(notAfter));
        command.ExecuteNonQuery();
    }

    private static ProbeRecord Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        Storage.Labels.FromJson(reader.GetString(3)),
        reader.GetString(4),
        reader.GetString(5),
        DbTime.Parse(reader.GetString(6)),
        reader.GetString(7),
        reader.GetString(8),
        DbTime.Parse(reader.GetString(9)),
        DbTime.ParseNullable(reader.GetValue(10)),
        reader.IsDBNull(11) ? null : reader.GetString(11));
}

using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Options;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

public enum ProbeCommandKind
{
    Suspend,
    Resume,
    UploadNow,
    UpdatePolicy,
}

/// <summary>A command as stored, with what became of it.</summary>
public sealed record ProbeCommandInfo(
    string Id,
    string ProbeId,
    ProbeCommandKind Kind,
    Policy? Policy,
    DateTimeOffset IssuedAt,
    string IssuedBy,
    DateTimeOffset? DeliveredAt,
    DateTimeOffset? ResultAt,
    bool? Ok,
    string? ResultMessage)
{
    /// <summary>pending (not sent yet), delivered (sent, no answer yet), ok or failed.</summary>
    public string Status => Ok switch
    {
        true => "ok",
        false => "failed",
        null => DeliveredAt is null ? "pending" : "delivered",
    };

    internal long Seq { get; init; }

    internal Command ToMessage() => new()
    {
        Id = Id,
        Kind = Kind switch
        {
            ProbeCommandKind.Suspend => CommandKind.Suspend,
            ProbeCommandKind.Resume => CommandKind.Resume,
            ProbeCommandKind.UploadNow => CommandKind.UploadNow,
            _ => CommandKind.UpdatePolicy,
        },
        Policy = Policy,
        IssuedAt = Timestamp.FromDateTimeOffset(IssuedAt),
    };
}

/// <summary>
/// Changes to a probe's policy; null fields keep the value the probe was last sent (or the
/// initial policy). The result is checked against <see cref="PolicyOptions"/>' limits.
/// </summary>
public sealed record PolicyChange
{
    public string? CaptureFilter { get; init; }

    public int? Snaplen { get; init; }

    public long? RotateSizeBytes { get; init; }

    public TimeSpan? RotateAge { get; init; }

    public TimeSpan? UploadWindowStart { get; init; }

    public TimeSpan? UploadWindowEnd { get; init; }

    public long? UploadMaxBytesPerSecond { get; init; }

    public double? UploadIdleUtilisation { get; init; }

    public TimeSpan? HeartbeatInterval { get; init; }

    /// <summary>Capture interfaces; empty: the probe's own configuration.</summary>
    public IReadOnlyList<string>? Interfaces { get; init; }
}

/// <summary>An operator's request that cannot be carried out; the message says why.</summary>
public sealed class ProbeCommandException : Exception
{
    public ProbeCommandException()
    {
    }

    public ProbeCommandException(string message)
        : base(message)
    {
    }

    public ProbeCommandException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The operator's side of probe commands, for the CLI, the JSON API and the web UI. A command is
/// stored, then sent on the probe's control stream: at once if the probe is connected to this
/// process, within <see cref="ControlOptions.ExternalChangePollInterval"/> when issued by another
/// process over the same state.db, otherwise when the probe next connects. It is sent again on
/// every connection until the probe answers.
/// </summary>
public sealed class ProbeCommands(StateDatabase database, TimeProvider time, IOptions<PolicyOptions> initialPolicy, ProbeNotifier notifier)
{
    private const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    /// <summary>Stop capturing (uploads continue); the probe counts as suspended until resumed.</summary>
    public ProbeCommandInfo Suspend(string probeId, string issuedBy = "") => Issue(probeId, ProbeCommandKind.Suspend, null, issuedBy);

    public ProbeCommandInfo Resume(string probeId, string issuedBy = "") => Issue(probeId, ProbeCommandKind.Resume, null, issuedBy);

    /// <summary>Upload the spool now, outside the upload window, once.</summary>
    public ProbeCommandInfo UploadNow(string probeId, string issuedBy = "") => Issue(probeId, ProbeCommandKind.UploadNow, null, issuedBy);

    /// <summary>Sends the probe its current policy with <paramref name="change"/> applied, under a higher version.</summary>
    public ProbeCommandInfo UpdatePolicy(string probeId, PolicyChange change, string issuedBy = "")
    {
        ArgumentNullException.ThrowIfNull(change);
        return Issue(probeId, ProbeCommandKind.UpdatePolicy, change, issuedBy);
    }

    /// <summary>The newest commands first, of one probe or all.</summary>
    public IReadOnlyList<ProbeCommandInfo> List(string? probeId = null, int limit = 100)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM commands WHERE $probe IS NULL OR probe_id = $probe ORDER BY seq DESC LIMIT $limit";
        command.Parameters.AddWithValue("$probe", (object?)probeId ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit);
        return ReadAll(command);
    }

    public ProbeCommandInfo? Get(string commandId)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM commands WHERE id = $id";
        command.Parameters.AddWithValue("$id", commandId);
        return ReadAll(command).FirstOrDefault();
    }

    private ProbeCommandInfo Issue(string probeId, ProbeCommandKind kind, PolicyChange? change, string issuedBy)
    {
        ArgumentNullException.ThrowIfNull(probeId);
        ArgumentNullException.ThrowIfNull(issuedBy);
        var now = DbTime.Parse(DbTime.ToText(time.GetUtcNow())); // as stored, so the returned command equals what List gives later
        ProbeCommandInfo info;
        long eventId;
        using (var connection = database.Open())
        using (var transaction = connection.BeginTransaction())
        {
            if (StateOf(connection, transaction, probeId) == ProbeStates.Revoked)
                throw new ProbeCommandException($"probe {probeId} is revoked");
            StatusRows.Ensure(connection, transaction, probeId);
            Policy? policy = change is null ? null : NextPolicy(connection, transaction, probeId, change);
            info = new ProbeCommandInfo(NewId(), probeId, kind, policy, now, issuedBy, null, null, null, null);
            using (var insert = connection.CreateCommand())
            {
                insert.Transaction = transaction;
                insert.CommandText = """
                    INSERT INTO commands (id, probe_id, kind, payload_json, issued_at, issued_by) VALUES ($id, $probe, $kind, $payload, $at, $by);
                    SELECT last_insert_rowid();
                    """;
                insert.Parameters.AddWithValue("$id", info.Id);
                insert.Parameters.AddWithValue("$probe", probeId);
                insert.Parameters.AddWithValue("$kind", KindName(kind));
                insert.Parameters.AddWithValue("$payload", policy is null ? "" : JsonFormatter.Default.Format(policy));
                insert.Parameters.AddWithValue("$at", DbTime.ToText(now));
                insert.Parameters.AddWithValue("$by", issuedBy);
                info = info with { Seq = Convert.ToInt64(insert.ExecuteScalar(), CultureInfo.InvariantCulture) };
            }

            // The operator's intent counts from now, whether or not the probe has heard yet.
            var status = kind switch
            {
                ProbeCommandKind.Suspend => "UPDATE probe_status SET operator_suspended = 1 WHERE probe_id = $id",
                ProbeCommandKind.Resume => "UPDATE probe_status SET operator_suspended = 0 WHERE probe_id = $id",
                ProbeCommandKind.UpdatePolicy => "UPDATE probe_status SET policy_json = $policy WHERE probe_id = $id",
                _ => null,
            };
            if (status is not null)
            {
                using var update = connection.CreateCommand();
                update.Transaction = transaction;
                update.CommandText = status;
                update.Parameters.AddWithValue("$id", probeId);
                update.Parameters.AddWithValue("$policy", policy is null ? DBNull.Value : JsonFormatter.Default.Format(policy));
                update.ExecuteNonQuery();
            }

            eventId = AppendEvent(connection, transaction, EventKinds.CommandIssued, probeId, By($"{KindName(kind)} {info.Id}", issuedBy));
            notifier.Claim(eventId);
            transaction.Commit();
        }

        notifier.Publish(new ProbeChange(ProbeChangeKind.CommandIssued, probeId, now) { CommandId = info.Id, CommandKind = kind, EventId = eventId });
        return info;
    }

    /// <summary>Commands of a probe not answered yet with a sequence above <paramref name="afterSeq"/>, oldest first.</summary>
    internal List<ProbeCommandInfo> Unanswered(string probeId, long afterSeq)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM commands WHERE probe_id = $probe AND result_at IS NULL AND seq > $after ORDER BY seq";
        command.Parameters.AddWithValue("$probe", probeId);
        command.Parameters.AddWithValue("$after", afterSeq);
        return ReadAll(command);
    }

    internal void MarkDelivered(string commandId)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE commands SET delivered_at = COALESCE(delivered_at, $at) WHERE id = $id";
        command.Parameters.AddWithValue("$id", commandId);
        command.Parameters.AddWithValue("$at", DbTime.ToText(time.GetUtcNow()));
        command.ExecuteNonQuery();
    }

    /// <summary>Records the probe's answer; false if the command is not this probe's or was answered already (a repeat after a reconnect).</summary>
    internal bool RecordResult(string probeId, string commandId, bool ok, string message, out ProbeCommandKind kind)
    {
        kind = default;
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            UPDATE commands SET result_at = $at, result_ok = $ok, result_message = $message, delivered_at = COALESCE(delivered_at, $at)
            WHERE id = $id AND probe_id = $probe AND result_at IS NULL
            RETURNING kind
            """;
        command.Parameters.AddWithValue("$id", commandId);
        command.Parameters.AddWithValue("$probe", probeId);
        command.Parameters.AddWithValue("$ok", ok ? 1 : 0);
        command.Parameters.AddWithValue("$message", message.Length > 1000 ? message[..1000] : message);
        command.Parameters.AddWithValue("$at", DbTime.ToText(time.GetUtcNow()));
        if (command.ExecuteScalar() is not string name)
            return false;
        kind = ParseKind(name);
        return true;
    }

    /// <summary>suspend, resume, upload-now, update-policy: the names stored and shown.</summary>
    public static string KindName(ProbeCommandKind kind) => kind switch
    {
        ProbeCommandKind.Suspend => "suspend",
        ProbeCommandKind.Resume => "resume",
        ProbeCommandKind.UploadNow => "upload-now",
        _ => "update-policy",
    };

    public static ProbeCommandKind ParseKind(string name) => name switch
    {
        "suspend" => ProbeCommandKind.Suspend,
        "resume" => ProbeCommandKind.Resume,
        "upload-now" => ProbeCommandKind.UploadNow,
        "update-policy" => ProbeCommandKind.UpdatePolicy,
        _ => throw new FormatException($"unknown command kind '{name}'"),
    };

    /// <summary>The probe's current policy (last sent, else the initial one) with the change applied, version above any it has seen.</summary>
    private Policy NextPolicy(SqliteConnection connection, SqliteTransaction transaction, string probeId, PolicyChange change)
    {
        var row = StatusRows.Read(connection, transaction, probeId)!;
        var current = row.PolicyJson is { } json ? Parser.Parse<Policy>(json) : initialPolicy.Value.ToPolicy();
        var options = new PolicyOptions
        {
            Version = Math.Max(Math.Max(current.Version, row.LastHeartbeat?.PolicyVersion ?? 0), initialPolicy.Value.Version) + 1,
            CaptureFilter = change.CaptureFilter ?? current.CaptureFilter,
            Snaplen = change.Snaplen ?? (int)current.Snaplen,
            RotateSizeBytes = change.RotateSizeBytes ?? (long)current.RotateSizeBytes,
            RotateAge = change.RotateAge ?? current.RotateAge?.ToTimeSpan() ?? initialPolicy.Value.RotateAge,
            UploadWindowStart = change.UploadWindowStart ?? current.UploadWindowStart?.ToTimeSpan() ?? TimeSpan.Zero,
            UploadWindowEnd = change.UploadWindowEnd ?? current.UploadWindowEnd?.ToTimeSpan() ?? TimeSpan.Zero,
            UploadMaxBytesPerSecond = change.UploadMaxBytesPerSecond ?? (long)current.UploadMaxBytesPerSecond,
            UploadIdleUtilisation = change.UploadIdleUtilisation ?? current.UploadIdleUtilisation,
            HeartbeatInterval = change.HeartbeatInterval ?? current.HeartbeatInterval?.ToTimeSpan() ?? initialPolicy.Value.HeartbeatInterval,
            Interfaces = [.. change.Interfaces ?? current.Interfaces],
        };
        var problems = new List<ValidationResult>();
        if (!Validator.TryValidateObject(options, new ValidationContext(options), problems, validateAllProperties: true))
            throw new ProbeCommandException("policy not accepted: " + string.Join("; ", problems.Select(p => p.ErrorMessage)));
        return options.ToPolicy();
    }

    private static string StateOf(SqliteConnection connection, SqliteTransaction transaction, string probeId)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT state FROM probes WHERE id = $id";
        command.Parameters.AddWithValue("$id", probeId);
        return command.ExecuteScalar() as string ?? throw new ProbeCommandException($"no probe {probeId}");
    }

    private long AppendEvent(SqliteConnection connection, SqliteTransaction transaction, string kind, string probeId, string detail)
    {
        EventStore.Append(connection, transaction, time, kind, probeId, null, detail);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT last_insert_rowid()";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static string By(string detail, string issuedBy) => issuedBy.Length == 0 ? detail : $"{detail} (by {issuedBy})";

    private static string NewId() => "c-" + RandomNumberGenerator.GetString(Base32, 12);

    private const string Columns = "seq, id, probe_id, kind, payload_json, issued_at, issued_by, delivered_at, result_at, result_ok, result_message";

    private static List<ProbeCommandInfo> ReadAll(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        var commands = new List<ProbeCommandInfo>();
        while (reader.Read())
        {
            var payload = reader.GetString(4);
            commands.Add(new ProbeCommandInfo(
                reader.GetString(1), reader.GetString(2), ParseKind(reader.GetString(3)),
                payload.Length == 0 ? null : Parser.Parse<Policy>(payload),
                DbTime.Parse(reader.GetString(5)), reader.GetString(6), DbTime.ParseNullable(reader.GetValue(7)),
                DbTime.ParseNullable(reader.GetValue(8)), reader.IsDBNull(9) ? null : reader.GetInt64(9) != 0,
                reader.IsDBNull(10) ? null : reader.GetString(10))
            {
                Seq = reader.GetInt64(0),
            });
        }

        return commands;
    }
}

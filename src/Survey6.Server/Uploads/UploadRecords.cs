using Microsoft.Data.Sqlite;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>One acknowledged upload as recorded in state.db's <c>uploads</c> table.</summary>
/// <param name="Duplicate">False for the upload that stored the capture, true for a later one acknowledged as a duplicate.</param>
public sealed record UploadRecord(
    long Id,
    string Sha256,
    string ProbeId,
    long SizeBytes,
    DateTimeOffset WindowStart,
    DateTimeOffset WindowEnd,
    DateTimeOffset ReceivedAt,
    bool Duplicate,
    string StoredPath);

/// <summary>Event kinds written by the upload service.</summary>
public static class UploadEventKinds
{
    public const string CaptureStored = "capture_stored";
}

/// <summary>The <c>uploads</c> table of state.db.</summary>
public sealed class UploadRecords(StateDatabase database, TimeProvider time)
{
    private const string Columns = "id, sha256, probe_id, size_bytes, window_start, window_end, received_at, duplicate, stored_path";

    /// <summary>
    /// Records that a capture is stored, with a <see cref="UploadEventKinds.CaptureStored"/> event, in one transaction.
    /// Idempotent: the capture may be offered again after a crash or a failed acknowledgement; false when it was already recorded.
    /// </summary>
    public bool RecordStored(UploadRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        if (Insert(connection, transaction, record with { Duplicate = false }) == 0)
            return false;
        EventStore.Append(connection, transaction, time, UploadEventKinds.CaptureStored, record.ProbeId, null,
            $"{record.Sha256} {record.SizeBytes} bytes, window {record.WindowStart:O} to {record.WindowEnd:O}");
        transaction.Commit();
        return true;
    }

    /// <summary>Records an upload acknowledged as a duplicate of a capture already stored.</summary>
    public void RecordDuplicate(UploadRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        using var connection = database.Open();
        Insert(connection, null, record with { Duplicate = true });
    }

    /// <summary>Newest first; optionally one probe's or one capture's.</summary>
    public IReadOnlyList<UploadRecord> Recent(int limit, string? probeId = null, string? sha256 = null)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT {Columns} FROM uploads
            WHERE ($probe IS NULL OR probe_id = $probe) AND ($sha IS NULL OR sha256 = $sha)
            ORDER BY id DESC LIMIT $limit
            """;
        command.Parameters.AddWithValue("$probe", (object?)probeId ?? DBNull.Value);
        command.Parameters.AddWithValue("$sha", (object?)sha256 ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = command.ExecuteReader();
        var records = new List<UploadRecord>();
        while (reader.Read())
        {
            records.Add(new UploadRecord(
                reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3),
                DbTime.Parse(reader.GetString(4)), DbTime.Parse(reader.GetString(5)), DbTime.Parse(reader.GetString(6)),
                reader.GetInt64(7) != 0, reader.GetString(8)));
        }

        return records;
    }

    private static int Insert(SqliteConnection connection, SqliteTransaction? transaction, UploadRecord record)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        // OR IGNORE meets the partial unique index on stored rows only; duplicate rows always go in.
        command.CommandText = """
            INSERT OR IGNORE INTO uploads (sha256, probe_id, size_bytes, window_start, window_end, received_at, duplicate, stored_path)
            VALUES ($sha, $probe, $size, $start, $end, $received, $duplicate, $path)
            """;
        command.Parameters.AddWithValue("$sha", record.Sha256);
        command.Parameters.AddWithValue("$probe", record.ProbeId);
        command.Parameters.AddWithValue("$size", record.SizeBytes);
        command.Parameters.AddWithValue("$start", DbTime.ToText(record.WindowStart));
        command.Parameters.AddWithValue("$end", DbTime.ToText(record.WindowEnd));
        command.Parameters.AddWithValue("$received", DbTime.ToText(record.ReceivedAt));
        command.Parameters.AddWithValue("$duplicate", record.Duplicate ? 1 : 0);
        command.Parameters.AddWithValue("$path", record.StoredPath);
        return command.ExecuteNonQuery();
    }
}

using Google.Protobuf;
using Microsoft.Data.Sqlite;
using Survey6.Contracts.V1;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>SQL for probe_status and probe_minutes; callers bring the connection and transaction.</summary>
internal static class StatusRows
{
    private const string Select = """
        SELECT p.id, p.state, p.hostname, p.labels_json, p.joined_at, p.leave_reason,
               s.first_heartbeat_at, s.last_heartbeat_at, s.heartbeat_interval_ms, s.reported_state, s.reported_reason,
               s.clock_skew_ms, s.round_trip_ms, s.packets_per_second, s.drop_ratio, s.upload_bytes_per_second,
               s.heartbeat_json, s.operator_suspended, s.policy_json, s.state_since
        FROM probes p LEFT JOIN probe_status s ON s.probe_id = p.id
        """;

    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    public static ProbeStatusRow? Read(SqliteConnection connection, SqliteTransaction? transaction, string probeId)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = Select + " WHERE p.id = $id";
        command.Parameters.AddWithValue("$id", probeId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRow(reader) : null;
    }

    /// <summary>Every probe, oldest join first; <paramref name="exceptRevoked"/> leaves out the ones that can no longer change.</summary>
    public static List<ProbeStatusRow> ReadAll(SqliteConnection connection, SqliteTransaction? transaction, bool exceptRevoked)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = Select + (exceptRevoked ? " WHERE p.state <> 'revoked'" : "") + " ORDER BY p.joined_at, p.id";
        using var reader = command.ExecuteReader();
        var rows = new List<ProbeStatusRow>();
        while (reader.Read())
            rows.Add(ReadRow(reader));
        return rows;
    }

    /// <summary>Creates the probe's status row if it has none yet.</summary>
    public static void Ensure(SqliteConnection connection, SqliteTransaction transaction, string probeId)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO probe_status (probe_id) VALUES ($id) ON CONFLICT(probe_id) DO NOTHING";
        command.Parameters.AddWithValue("$id", probeId);
        command.ExecuteNonQuery();
    }

    public static void WriteHeartbeat(SqliteConnection connection, SqliteTransaction transaction, string probeId, DateTimeOffset at, HeartbeatFigures figures, Heartbeat heartbeat)
    {
        Ensure(connection, transaction, probeId);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            UPDATE probe_status SET
                first_heartbeat_at = COALESCE(first_heartbeat_at, $at), last_heartbeat_at = $at, heartbeat_interval_ms = $interval,
                reported_state = $state, reported_reason = $reason, clock_skew_ms = $skew, round_trip_ms = $rtt,
                packets_per_second = $pps, drop_ratio = $drop, upload_bytes_per_second = $ups, heartbeat_json = $json
            WHERE probe_id = $id
            """;
        command.Parameters.AddWithValue("$id", probeId);
        command.Parameters.AddWithValue("$at", DbTime.ToText(at));
        command.Parameters.AddWithValue("$interval", figures.Interval is { } i ? (long)i.TotalMilliseconds : DBNull.Value);
        command.Parameters.AddWithValue("$state", ReportedStates.From(heartbeat.State));
        command.Parameters.AddWithValue("$reason", heartbeat.StateReason);
        command.Parameters.AddWithValue("$skew", figures.ClockSkew is { } s ? (long)s.TotalMilliseconds : DBNull.Value);
        command.Parameters.AddWithValue("$rtt", figures.RoundTrip is { } r ? (long)r.TotalMilliseconds : DBNull.Value);
        command.Parameters.AddWithValue("$pps", figures.PacketsPerSecond);
        command.Parameters.AddWithValue("$drop", figures.DropRatio);
        command.Parameters.AddWithValue("$ups", figures.UploadBytesPerSecond);
        command.Parameters.AddWithValue("$json", JsonFormatter.Default.Format(heartbeat));
        command.ExecuteNonQuery();
    }

    /// <summary>Adds one heartbeat to its minute's rollup (server clock).</summary>
    public static void AddToMinute(SqliteConnection connection, SqliteTransaction transaction, string probeId, DateTimeOffset at, HeartbeatFigures figures, Heartbeat heartbeat)
    {
        var minute = new DateTimeOffset(at.UtcTicks - at.UtcTicks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO probe_minutes (probe_id, minute, heartbeats, received, kernel_dropped, interface_dropped, queue_dropped,
                uploaded_files, uploaded_bytes, upload_failures, spool_files_max, spool_bytes_max, spool_oldest_ms_max, free_disk_min,
                cpu_percent_sum, rss_max, rx_bytes_per_second_max, tx_bytes_per_second_max, utilisation_max, clock_skew_ms_max_abs, reported_state)
            VALUES ($id, $minute, 1, $received, $kernel, $interface, $queue, $files, $bytes, $failures, $spoolFiles, $spoolBytes,
                $oldest, $free, $cpu, $rss, $rx, $tx, $utilisation, $skew, $state)
            ON CONFLICT(probe_id, minute) DO UPDATE SET
                heartbeats = heartbeats + 1,
                received = received + excluded.received,
                kernel_dropped = kernel_dropped + excluded.kernel_dropped,
                interface_dropped = interface_dropped + excluded.interface_dropped,
                queue_dropped = queue_dropped + excluded.queue_dropped,
                uploaded_files = uploaded_files + excluded.uploaded_files,
                uploaded_bytes = uploaded_bytes + excluded.uploaded_bytes,
                upload_failures = upload_failures + excluded.upload_failures,
                spool_files_max = MAX(spool_files_max, excluded.spool_files_max),
                spool_bytes_max = MAX(spool_bytes_max, excluded.spool_bytes_max),
                spool_oldest_ms_max = MAX(spool_oldest_ms_max, excluded.spool_oldest_ms_max),
                free_disk_min = MIN(free_disk_min, excluded.free_disk_min),
                cpu_percent_sum = cpu_percent_sum + excluded.cpu_percent_sum,
                rss_max = MAX(rss_max, excluded.rss_max),
                rx_bytes_per_second_max = MAX(rx_bytes_per_second_max, excluded.rx_bytes_per_second_max),
                tx_bytes_per_second_max = MAX(tx_bytes_per_second_max, excluded.tx_bytes_per_second_max),
                utilisation_max = CASE WHEN excluded.utilisation_max IS NULL THEN utilisation_max
                                       WHEN utilisation_max IS NULL THEN excluded.utilisation_max
                                       ELSE MAX(utilisation_max, excluded.utilisation_max) END,
                clock_skew_ms_max_abs = CASE WHEN excluded.clock_skew_ms_max_abs IS NULL THEN clock_skew_ms_max_abs
                                             WHEN clock_skew_ms_max_abs IS NULL THEN excluded.clock_skew_ms_max_abs
                                             ELSE MAX(clock_skew_ms_max_abs, excluded.clock_skew_ms_max_abs) END,
                reported_state = excluded.reported_state
            """;
        var spool = heartbeat.Spool;
        command.Parameters.AddWithValue("$id", probeId);
        command.Parameters.AddWithValue("$minute", DbTime.ToText(minute));
        command.Parameters.AddWithValue("$received", Clamp(figures.Received));
        command.Parameters.AddWithValue("$kernel", Clamp(figures.KernelDropped));
        command.Parameters.AddWithValue("$interface", Clamp(figures.InterfaceDropped));
        command.Parameters.AddWithValue("$queue", Clamp(figures.QueueDropped));
        command.Parameters.AddWithValue("$files", Clamp(figures.UploadedFiles));
        command.Parameters.AddWithValue("$bytes", Clamp(figures.UploadedBytes));
        command.Parameters.AddWithValue("$failures", Clamp(figures.UploadFailures));
        command.Parameters.AddWithValue("$spoolFiles", (long)(spool?.Files ?? 0));
        command.Parameters.AddWithValue("$spoolBytes", Clamp(spool?.Bytes ?? 0));
        command.Parameters.AddWithValue("$oldest", spool?.OldestAge is { } age ? (long)age.ToTimeSpan().TotalMilliseconds : 0L);
        // No spool report: "unknown" must not read as a full disk.
        command.Parameters.AddWithValue("$free", spool is null ? long.MaxValue : Clamp(spool.FreeDiskBytes));
        command.Parameters.AddWithValue("$cpu", heartbeat.CpuPercent);
        command.Parameters.AddWithValue("$rss", Clamp(heartbeat.RssBytes));
        command.Parameters.AddWithValue("$rx", Clamp(heartbeat.Interfaces.Aggregate(0UL, (sum, i) => sum + i.RxBytesPerSecond)));
        command.Parameters.AddWithValue("$tx", Clamp(heartbeat.Interfaces.Aggregate(0UL, (sum, i) => sum + i.TxBytesPerSecond)));
        // Negative means the link speed is unknown: no figure rather than a wrong one.
        var known = heartbeat.Interfaces.Where(i => i.Utilisation >= 0).Select(i => i.Utilisation).ToList();
        command.Parameters.AddWithValue("$utilisation", known.Count > 0 ? known.Max() : DBNull.Value);
        command.Parameters.AddWithValue("$skew", figures.ClockSkew is { } s ? (long)s.Duration().TotalMilliseconds : DBNull.Value);
        command.Parameters.AddWithValue("$state", ReportedStates.From(heartbeat.State));
        command.ExecuteNonQuery();
    }

    /// <summary>Moves probes.state from <paramref name="from"/> to <paramref name="to"/> unless someone changed it meanwhile (a revocation).</summary>
    public static bool ChangeState(SqliteConnection connection, SqliteTransaction transaction, string probeId, string from, string to, DateTimeOffset at)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "UPDATE probes SET state = $to WHERE id = $id AND state = $from";
        command.Parameters.AddWithValue("$id", probeId);
        command.Parameters.AddWithValue("$from", from);
        command.Parameters.AddWithValue("$to", to);
        if (command.ExecuteNonQuery() != 1)
            return false;
        Ensure(connection, transaction, probeId);
        using var since = connection.CreateCommand();
        since.Transaction = transaction;
        since.CommandText = "UPDATE probe_status SET state_since = $at WHERE probe_id = $id";
        since.Parameters.AddWithValue("$id", probeId);
        since.Parameters.AddWithValue("$at", DbTime.ToText(at));
        since.ExecuteNonQuery();
        return true;
    }

    public static int DeleteMinutesBefore(SqliteConnection connection, DateTimeOffset cutoff)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM probe_minutes WHERE minute < $cutoff";
        command.Parameters.AddWithValue("$cutoff", DbTime.ToText(cutoff));
        return command.ExecuteNonQuery();
    }

    public static List<ProbeHistoryMinute> ReadMinutes(SqliteConnection connection, string probeId, DateTimeOffset from, DateTimeOffset to)
    {
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT minute, heartbeats, received, kernel_dropped, interface_dropped, queue_dropped, uploaded_files, uploaded_bytes,
                   upload_failures, spool_files_max, spool_bytes_max, spool_oldest_ms_max, free_disk_min, cpu_percent_sum, rss_max,
                   rx_bytes_per_second_max, tx_bytes_per_second_max, utilisation_max, clock_skew_ms_max_abs, reported_state
            FROM probe_minutes WHERE probe_id = $id AND minute >= $from AND minute < $to ORDER BY minute
            """;
        command.Parameters.AddWithValue("$id", probeId);
        command.Parameters.AddWithValue("$from", DbTime.ToText(from));
        command.Parameters.AddWithValue("$to", DbTime.ToText(to));
        using var reader = command.ExecuteReader();
        var minutes = new List<ProbeHistoryMinute>();
        while (reader.Read())
        {
            var heartbeats = reader.GetInt64(1);
            var free = reader.GetInt64(12);
            minutes.Add(new ProbeHistoryMinute(
                DbTime.Parse(reader.GetString(0)), (int)heartbeats, reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5),
                reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8), reader.GetInt64(9), reader.GetInt64(10),
                TimeSpan.FromMilliseconds(reader.GetInt64(11)), free == long.MaxValue ? null : free,
                heartbeats == 0 ? 0 : reader.GetDouble(13) / heartbeats, reader.GetInt64(14),
                reader.GetInt64(15), reader.GetInt64(16), reader.IsDBNull(17) ? null : reader.GetDouble(17),
                reader.IsDBNull(18) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(18)), reader.GetString(19)));
        }

        return minutes;
    }

    private static ProbeStatusRow ReadRow(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        reader.GetString(2),
        Storage.Labels.FromJson(reader.GetString(3)),
        DbTime.Parse(reader.GetString(4)),
        reader.IsDBNull(5) ? null : reader.GetString(5),
        DbTime.ParseNullable(reader.GetValue(6)),
        DbTime.ParseNullable(reader.GetValue(7)),
        reader.IsDBNull(8) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(8)),
        reader.IsDBNull(9) ? null : reader.GetString(9),
        reader.IsDBNull(10) ? "" : reader.GetString(10),
        reader.IsDBNull(11) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(11)),
        reader.IsDBNull(12) ? null : TimeSpan.FromMilliseconds(reader.GetInt64(12)),
        reader.IsDBNull(13) ? 0 : reader.GetDouble(13),
        reader.IsDBNull(14) ? 0 : reader.GetDouble(14),
        reader.IsDBNull(15) ? 0 : reader.GetDouble(15),
        reader.IsDBNull(16) ? null : Parser.Parse<Heartbeat>(reader.GetString(16)),
        !reader.IsDBNull(17) && reader.GetInt64(17) != 0,
        reader.IsDBNull(18) ? null : reader.GetString(18),
        DbTime.ParseNullable(reader.GetValue(19)));

    private static long Clamp(ulong value) => value > long.MaxValue ? long.MaxValue : (long)value;
}

/// <summary>What the server derives from one heartbeat and the one before it.</summary>
internal sealed record HeartbeatFigures(
    TimeSpan? Interval,
    TimeSpan? ClockSkew,
    TimeSpan? RoundTrip,
    ulong Received,
    ulong KernelDropped,
    ulong InterfaceDropped,
    ulong QueueDropped,
    ulong UploadedFiles,
    ulong UploadedBytes,
    ulong UploadFailures,
    double PacketsPerSecond,
    double DropRatio,
    double UploadBytesPerSecond);

/// <summary>One minute of a probe's heartbeats (server clock): counter increases summed, levels as extremes.</summary>
public sealed record ProbeHistoryMinute(
    DateTimeOffset Minute,
    int Heartbeats,
    long Received,
    long KernelDropped,
    long InterfaceDropped,
    long QueueDropped,
    long UploadedFiles,
    long UploadedBytes,
    long UploadFailures,
    long SpoolFilesMax,
    long SpoolBytesMax,
    TimeSpan SpoolOldestAgeMax,
    long? FreeDiskMin,
    double CpuPercentMean,
    long RssMax,
    long RxBytesPerSecondMax,
    long TxBytesPerSecondMax,
    double? UtilisationMax,
    TimeSpan? ClockSkewMaxAbs,
    string ReportedState);

using System.Security.Cryptography;
using System.Text;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Connections;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// The <c>connections</c> dataset in the incremental design (docs/datasets.md, "connections"): per capture, a
/// <see cref="ConnectionTracker"/> over the capture's cleaned packets writes its fragments once as the partial
/// <c>connections.parquet</c>; per date, <see cref="LoadMerged"/> stitches every fragment of the date.
/// </summary>
/// <remarks>
/// The packets files lack the TCP sequence, acknowledgement and window fields the tracker needs, so the tracker reads
/// the stored capture again, skipping the frames the clean step marked as duplicates (the same frame numbers).
/// Addresses are anonymised before they reach the tracker, so partials and uids never hold a real address.
/// </remarks>
internal sealed partial class ConnectionPartials(AggregatorOptions options, ILogger logger) : IDisposable
{
    /// <summary>The partial's file name (without <c>.parquet</c>) in each capture's partial folder.</summary>
    public const string PartialName = "connections";

    /// <summary>The merge's in-memory table of stitched connections, read by <see cref="Query"/>.</summary>
    private const string MergedTable = "conn";

    private readonly Dictionary<Ipv6Address, Ipv6Address> _anonymised = [];
    private PrefixPreservingAnonymiser? _anonymiser;
    private bool _anonymiserLoaded;

    /// <summary>
    /// What the fragments depend on besides the packets: the connection settings. Part of every partial's name and of
    /// the date's fingerprint, so that changed timeouts recompute the partials instead of stitching mixed fragments.
    /// </summary>
    public static string SettingsTag(ConnectionOptions settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var text = string.Join(',', new[] { settings.TcpIdleTimeout, settings.UdpIdleTimeout, settings.IcmpIdleTimeout, settings.TcpCloseDelay, settings.TcpAttemptDelay }
            .Select(t => t.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return "connections:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>
    /// Tracks the connections of the capture whose cleaned packets are in <c>pk</c> and writes its fragments to
    /// <c>connections.parquet</c> in <paramref name="stagedFolder"/>. A stored capture that is gone (removed by
    /// retention) gives an empty partial and a warning: its connections cannot be computed again.
    /// </summary>
    public void Write(DuckDBConnection db, string packetsFile, string sha256, DateOnly date, string stagedFolder, string keyValues, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        var duplicates = new HashSet<long>();
        foreach (var row in Rows(db, "SELECT frame FROM pk WHERE duplicate"))
            duplicates.Add((long)row[0]!);
        var head = Rows(db, $"SELECT any_value(probe_id), min(window_start_ns), min(time_epoch_ns) FROM read_parquet({AggregateSql.Quote(packetsFile)}, hive_partitioning = false)")[0];

        Execute(db, $"""
            CREATE OR REPLACE TABLE cf (
                probe_id VARCHAR, source VARCHAR, proto VARCHAR, addr_a VARCHAR, port_a USMALLINT, addr_b VARCHAR, port_b USMALLINT,
                encapsulation VARCHAR, first_ts_ns BIGINT, last_packet_ns BIGINT, head_open BOOLEAN, covered BOOLEAN, fragment BLOB)
            """);
        if (head[0] is string probeId)
        {
            // The stitcher needs the window start at or before the first packet; a probe's clock may disagree with its manifest.
            long windowStart = Math.Min(head[1] as long? ?? long.MaxValue, head[2] as long? ?? long.MaxValue);
            var capture = options.Layout.CapturePath(probeId, date, sha256);
            if (!File.Exists(capture))
                CaptureGone(logger, sha256, capture);
            else if (windowStart != long.MaxValue)
                Append(db, Track(capture, probeId, sha256, windowStart, duplicates, ct));
        }

        var file = Path.Combine(stagedFolder, PartialName + ".parquet");
        Execute(db, $"""
            COPY (
                SELECT probe_id, source, proto, addr_a, port_a, addr_b, port_b, encapsulation,
                    {AggregateSql.Timestamp("first_ts_ns")} AS first_ts, first_ts_ns, last_packet_ns, head_open, covered, fragment
                FROM cf ORDER BY probe_id, proto, addr_a, port_a, addr_b, port_b, encapsulation, first_ts_ns, covered
            ) TO {AggregateSql.Quote(file)} (FORMAT parquet, COMPRESSION zstd{keyValues})
            """);
        Execute(db, "DROP TABLE cf");
    }

    private List<ConnectionFragment> Track(string capture, string probeId, string sha256, long windowStart, HashSet<long> duplicates, CancellationToken ct)
    {
        var tracker = new ConnectionTracker(probeId, sha256, windowStart, options.Connections);
        var anonymiser = Anonymiser();
        using var reader = CaptureReader.Open(capture);
        var record = new PacketRecord();
        long frameNumber = 0;
        while (reader.TryRead(out var frame))
        {
            // The same numbering as the parse stage's packets rows, so the clean step's duplicates are skipped here too.
            FrameDissection.Dissect(frame, ++frameNumber, ref record);
            if ((frameNumber & 0xFFFF) == 0)
                ct.ThrowIfCancellationRequested();
            if (duplicates.Contains(frameNumber) || !ConnectionPacket.TryFrom(record, out var packet))
                continue;
            if (anonymiser is not null)
                packet = packet with { Source = Anonymise(anonymiser, packet.Source), Destination = Anonymise(anonymiser, packet.Destination) };
            tracker.Add(packet);
        }

        return [.. tracker.Drain()];
    }

    /// <summary>Per distinct address, not per packet: an anonymisation costs 128 AES blocks.</summary>
    private Ipv6Address Anonymise(PrefixPreservingAnonymiser anonymiser, Ipv6Address address)
    {
        ref var image = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_anonymised, address, out bool known);
        if (!known)
            image = anonymiser.Anonymise(address);
        return image;
    }

    private PrefixPreservingAnonymiser? Anonymiser()
    {
        if (!_anonymiserLoaded)
        {
            _anonymiser = AnonymisationKey.FromOptions(options);
            _anonymiserLoaded = true;
        }
        return _anonymiser;
    }

    private static void Append(DuckDBConnection db, List<ConnectionFragment> fragments)
    {
        using var appender = db.CreateAppender("cf");
        foreach (var f in fragments)
        {
            var key = f.Key;
            appender.CreateRow()
                .AppendValue(f.ProbeId)
                .AppendValue(f.Source)
                .AppendValue(key.ProtocolName)
                .AppendValue(key.AddressA.ToString())
                .AppendValue(key.PortA)
                .AppendValue(key.AddressB.ToString())
                .AppendValue(key.PortB)
                .AppendValue(ProtocolNames.Encapsulation(key.Encapsulation))
                .AppendValue(f.FirstTimestampNs)
                .AppendValue(f.LastPacketNs)
                .AppendValue(f.HeadOpen)
                .AppendValue(f.Covered)
                .AppendValue(f.ToBytes())
                .EndRow();
        }
    }

    /// <summary>
    /// Stitches every fragment in the partials <paramref name="glob"/> matches into the table the <see cref="Query"/>
    /// reads: connections that span captures or runs of the date are joined (<see cref="ConnectionStitcher"/>).
    /// </summary>
    public static void LoadMerged(DuckDBConnection db, string glob, ConnectionOptions settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        var fragments = new List<ConnectionFragment>();
        using (var command = db.CreateCommand())
        {
            command.CommandText = $"SELECT fragment FROM read_parquet({AggregateSql.Quote(glob)}, hive_partitioning = false)";
            using var registration = ct.Register(() => command.Cancel());
            using var reader = command.ExecuteReader();
            using var buffer = new MemoryStream();
            while (reader.Read())
            {
                buffer.SetLength(0);
                using (var blob = reader.GetStream(0))
                    blob.CopyTo(buffer);
                fragments.Add(ConnectionFragment.FromBytes(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
            }
        }
        ct.ThrowIfCancellationRequested();
        var connections = new ConnectionStitcher(settings).Stitch(fragments);
        fragments.Clear();

        Execute(db, $"""
            CREATE OR REPLACE TABLE {MergedTable} (
                uid VARCHAR, ts_ns BIGINT, orig_h VARCHAR, orig_p USMALLINT, resp_h VARCHAR, resp_p USMALLINT, proto VARCHAR,
                service VARCHAR, duration_ns BIGINT, orig_bytes BIGINT, resp_bytes BIGINT, conn_state VARCHAR, missed_bytes BIGINT,
                history VARCHAR, orig_pkts BIGINT, orig_ip_bytes BIGINT, resp_pkts BIGINT, resp_ip_bytes BIGINT, probe_id VARCHAR,
                encapsulation VARCHAR, orig_type VARCHAR, orig_iid VARCHAR, resp_type VARCHAR, resp_iid VARCHAR)
            """);
        using var appender = db.CreateAppender(MergedTable);
        foreach (var c in connections)
        {
            appender.CreateRow()
                .AppendValue(c.Uid).AppendValue(c.TsNs)
                .AppendValue(c.OrigH).AppendValue(c.OrigP).AppendValue(c.RespH).AppendValue(c.RespP)
                .AppendValue(c.Proto).AppendValue(c.Service).AppendValue(c.DurationNs)
                .AppendValue(c.OrigBytes).AppendValue(c.RespBytes).AppendValue(c.ConnState).AppendValue(c.MissedBytes)
                .AppendValue(c.History).AppendValue(c.OrigPkts).AppendValue(c.OrigIpBytes).AppendValue(c.RespPkts).AppendValue(c.RespIpBytes)
                .AppendValue(c.ProbeId).AppendValue(c.Encapsulation)
                .AppendValue(c.OrigType).AppendValue(c.OrigIid).AppendValue(c.RespType).AppendValue(c.RespIid)
                .EndRow();
        }
    }

    /// <summary>
    /// The date's <c>connections</c> rows from the stitched table and the merged <c>addr</c> table. The address classes
    /// come from <c>addr</c>, which the parse stage classified from the real address before anonymisation (an
    /// anonymised address has no class of its own); the tracker's own classes are the fallback.
    /// </summary>
    public static string Query => $"""
        SELECT c.uid, {AggregateSql.Timestamp("c.ts_ns")} AS ts, c.ts_ns,
            c.orig_h, c.orig_p, c.resp_h, c.resp_p, c.proto, c.service,
            c.duration_ns / 1e9 AS duration, c.duration_ns,
            c.orig_bytes, c.resp_bytes, c.conn_state, c.missed_bytes, c.history,
            c.orig_pkts, c.orig_ip_bytes, c.resp_pkts, c.resp_ip_bytes,
            c.probe_id, c.encapsulation,
            CASE WHEN o.address IS NULL THEN c.orig_type ELSE o.type END AS orig_type,
            CASE WHEN o.address IS NULL THEN c.orig_iid ELSE o.iid_class END AS orig_iid,
            CASE WHEN r.address IS NULL THEN c.resp_type ELSE r.type END AS resp_type,
            CASE WHEN r.address IS NULL THEN c.resp_iid ELSE r.iid_class END AS resp_iid
        FROM {MergedTable} c
        LEFT JOIN addr o ON o.address = c.orig_h
        LEFT JOIN addr r ON r.address = c.resp_h
        ORDER BY c.ts_ns, c.probe_id, c.uid
        """;

    private static List<object?[]> Rows(DuckDBConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (int i = 0; i < row.Length; i++)
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    private static void Execute(DuckDBConnection db, string sql)
    {
        using var command = db.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose() => _anonymiser?.Dispose();

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Connections of capture {Sha256} not computed: its stored capture {Path} is gone (removed by retention?); the date's connections lack it")]
    private static partial void CaptureGone(ILogger logger, string sha256, string path);
}

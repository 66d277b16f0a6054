using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// The <c>connections</c> dataset in the incremental design (docs/datasets.md, "connections"). The parse stage tracks
/// each capture's connections in its own dissection pass and writes the fragments once, as
/// <c>LAKE/.connections/date=D/probe=P/SHA.SETTINGS.parquet</c> (<see cref="ConnectionPartialWriter"/>); the aggregate
/// stage copies that file as the capture's partial, and per date <see cref="Stitch"/> joins only the fragments that can
/// meet a fragment of another capture of the same probe, while every other fragment goes from the partials to the
/// dataset in SQL (<see cref="WriteUnits"/>).
/// </summary>
/// <remarks>
/// A capture whose partial must leave out duplicate frames (the clean step found some), or that was parsed before the
/// parse stage tracked connections, is tracked here instead from its stored capture, skipping the duplicate frames
/// (the same frame numbers as the packets rows). Addresses are anonymised before they reach a tracker, so partials
/// and uids never hold a real address.
/// </remarks>
internal sealed partial class ConnectionPartials(AggregatorOptions options, ILogger logger) : IDisposable
{
    /// <summary>The partial's file name (without <c>.parquet</c>) in each capture's partial folder.</summary>
    public const string PartialName = "connections";

    /// <summary>The fragments' format (<see cref="ConnectionFragmentFile.FormatVersion"/>), part of <see cref="SettingsHash"/>.</summary>
    private const int Format = ConnectionFragmentFile.FormatVersion;

    /// <summary>The stitched edge connections of the date being merged, read by <see cref="WriteUnits"/>.</summary>
    private const string StitchedTable = "conn_stitched";

    /// <summary>Per capture of the date being merged: whether a capture of its probe comes within the idle timeout before or after it.</summary>
    private const string NeighboursTable = "conn_neighbours";

    private readonly AnonymisedAddresses _anonymised = new(options);

    /// <summary>
    /// What the fragments depend on besides the packets: the partial format and the connection settings. Part of every
    /// partial's name, of the parse stage's fragment file names and of the date's fingerprint, so that changed timeouts
    /// recompute the partials instead of stitching mixed fragments.
    /// </summary>
    public static string SettingsHash(ConnectionOptions settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var text = Format.ToString(System.Globalization.CultureInfo.InvariantCulture) + ";" + string.Join(',',
            new[] { settings.TcpIdleTimeout, settings.UdpIdleTimeout, settings.IcmpIdleTimeout, settings.TcpCloseDelay, settings.TcpAttemptDelay }
                .Select(t => t.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    public static string SettingsTag(ConnectionOptions settings) => "connections:" + SettingsHash(settings);

    /// <summary>Where the parse stage puts a capture's fragments: hidden from dataset readers, kept beside the packets file.</summary>
    public static string ParsedFile(LakeLayout lake, DateOnly date, string probeId, string sha256, ConnectionOptions settings)
    {
        ArgumentNullException.ThrowIfNull(lake);
        return Path.Combine(lake.ParsedConnections, LakeLayout.DatePart(date), "probe=" + probeId, sha256 + "." + SettingsHash(settings) + ".parquet");
    }

    /// <summary>
    /// Writes the capture's connection partial to <c>connections.parquet</c> in <paramref name="stagedFolder"/>, its
    /// cleaned packets being in <c>pk</c>: a copy of the parse stage's fragments when the clean step dropped none of
    /// its frames, else tracked again from the stored capture without the duplicates. A capture whose stored file is
    /// gone (removed by retention) keeps the parse stage's fragments, duplicates included, or, parsed before the parse
    /// stage tracked connections, gets none; either way a warning names it.
    /// </summary>
    public void Write(DuckDBConnection db, LakeLayout lake, string packetsFile, string sha256, DateOnly date, string stagedFolder, string? keyId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        var target = Path.Combine(stagedFolder, PartialName + ".parquet");
        var head = Rows(db, $"SELECT (SELECT any_value(probe_id) FROM pk), (SELECT count(*) FROM {AggregateSql.CaptureDuplicates})")[0];
        if (head[0] is not string probeId)
        {
            ConnectionPartialWriter.Open(target, keyId).Complete();
            return;
        }

        var parsed = ParsedFile(lake, date, probeId, sha256, options.Connections);
        bool usable = File.Exists(parsed);
        if (usable && ConnectionFragmentFile.Problem(db, parsed) is { } problem)
        {
            // Left in place for the operator to look at; the cleanup stage does not remove it, and parsing again replaces it.
            FragmentsUnusable(logger, sha256, parsed, problem);
            usable = false;
        }

        bool duplicates = (long)head[1]! > 0;
        if (!duplicates && usable)
        {
            File.Copy(parsed, target);
            return;
        }

        var capture = options.Layout.CapturePath(probeId, date, sha256);
        if (File.Exists(capture))
        {
            Track(db, capture, packetsFile, probeId, sha256, target, keyId, ct);
            return;
        }

        if (usable)
        {
            DuplicatesCounted(logger, sha256, capture);
            File.Copy(parsed, target);
            return;
        }

        CaptureGone(logger, sha256, capture);
        ConnectionPartialWriter.Open(target, keyId).Complete();
    }

    /// <summary>The parse stage's tracking, again, over the stored capture without the frames the clean step dropped.</summary>
    private void Track(DuckDBConnection db, string capture, string packetsFile, string probeId, string sha256, string target, string? keyId, CancellationToken ct)
    {
        var duplicates = new HashSet<long>();
        foreach (var row in Rows(db, $"SELECT frame FROM {AggregateSql.CaptureDuplicates}"))
            duplicates.Add((long)row[0]!);
        var span = Rows(db, $"SELECT min(window_start_ns), min(time_epoch_ns) FROM read_parquet({AggregateSql.Quote(packetsFile)}, hive_partitioning = false)")[0];
        // The window start must be at or before the first packet; a probe's clock may disagree with its manifest.
        long windowStart = Math.Min(span[0] as long? ?? long.MaxValue, span[1] as long? ?? long.MaxValue);

        using var writer = ConnectionPartialWriter.Open(target, keyId);
        var tracker = new ConnectionTracker(probeId, sha256, windowStart, options.Connections);
        using (var reader = CaptureReader.Open(capture))
        {
            var record = new PacketRecord();
            long frameNumber = 0;
            long last = long.MinValue;
            while (reader.TryRead(out var frame))
            {
                // The same numbering as the parse stage's packets rows, so the clean step's duplicates are skipped here too.
                FrameDissection.Dissect(frame, ++frameNumber, ref record);
                if ((frameNumber & 0xFFFF) == 0)
                {
                    ct.ThrowIfCancellationRequested();
                    tracker.Expire(last);
                    writer.Add(tracker.TakeFinished());
                }
                if (duplicates.Contains(frameNumber) || !ConnectionPacket.TryFrom(record, out var packet))
                    continue;
                last = Math.Max(last, packet.TimestampNs);
                tracker.Add(_anonymised.Apply(packet));
            }
            writer.Add(tracker.Drain(last));
        }
        writer.Complete();
    }

    /// <summary>
    /// Which captures of the date can share a connection with another capture of their probe: a head-open or covered
    /// fragment can join only if a capture of the probe starts before it and ends within the longest idle timeout of its
    /// start; a tail-open one only if a capture starts after it within that timeout of its end. A capture without a
    /// known span may meet anything of its probe. Captures with neither are left out.
    /// </summary>
    public static Dictionary<string, (bool Earlier, bool Later)> Neighbours(IEnumerable<(string Sha256, string Probe, long? FromNs, long? ToNs)> captures, ConnectionOptions settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        long reach = new[] { settings.TcpIdleTimeout, settings.UdpIdleTimeout, settings.IcmpIdleTimeout }.Max().Ticks * 100;
        var result = new Dictionary<string, (bool Earlier, bool Later)>(StringComparer.Ordinal);
        foreach (var probe in captures.GroupBy(c => c.Probe, StringComparer.Ordinal))
        {
            var list = probe.ToList();
            bool unknown = list.Any(c => c.FromNs is null || c.ToNs is null);
            foreach (var c in list)
            {
                bool earlier = unknown && list.Count > 1, later = earlier;
                if (!unknown)
                {
                    foreach (var o in list)
                    {
                        if (o.Sha256 == c.Sha256)
                            continue;
                        // The same pair test both ways, so that a tail-open fragment is an edge exactly when the head-open one it may meet is.
                        earlier |= Meets(o, c, reach);
                        later |= Meets(c, o, reach);
                    }
                }
                if (earlier || later)
                    result[c.Sha256] = (earlier, later);
            }
        }
        return result;
    }

    /// <summary>Whether <paramref name="first"/>'s last fragments may be continued by <paramref name="second"/>'s first ones.</summary>
    private static bool Meets((string Sha256, string Probe, long? FromNs, long? ToNs) first, (string Sha256, string Probe, long? FromNs, long? ToNs) second, long reach) =>
        (first.FromNs < second.FromNs || (first.FromNs == second.FromNs && string.CompareOrdinal(first.Sha256, second.Sha256) < 0))
        && first.ToNs >= second.FromNs - reach;

    /// <summary>
    /// Stitches the date's edge fragments (those a fragment of another capture of the probe may meet, by
    /// <paramref name="neighbours"/>) into the table <see cref="WriteUnits"/> reads beside the partials' other rows. The
    /// edges are read in key order, one key at a time, so memory holds one key's fragments, not the date's.
    /// </summary>
    public static long Stitch(DuckDBConnection db, IReadOnlyList<MergeCapture> captures, IReadOnlyDictionary<string, (bool Earlier, bool Later)> neighbours, ConnectionOptions settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(neighbours);
        Execute(db, $"CREATE OR REPLACE TABLE {NeighboursTable} (source VARCHAR, has_earlier BOOLEAN, has_later BOOLEAN)");
        using (var appender = db.CreateAppender(NeighboursTable))
        {
            foreach (var (sha, (earlier, later)) in neighbours)
                appender.CreateRow().AppendValue(sha).AppendValue(earlier).AppendValue(later).EndRow();
        }
        Execute(db, $"CREATE OR REPLACE TABLE {StitchedTable} ({ConnectionFragmentFile.RowColumnsDdl})");
        // Only the captures with a neighbour hold edges: the others' files are not read.
        var files = captures.Where(c => neighbours.ContainsKey(c.Sha256)).Select(c => c.File(PartialName)).ToList();
        if (files.Count == 0)
            return 0;

        var stitcher = new ConnectionStitcher(settings);
        long count = 0;
        // The edges stream from one connection while the stitched rows go in through a second one on the same database.
        using var output = db.Duplicate();
        if (output.State != System.Data.ConnectionState.Open)
            output.Open();
        using var rows = output.CreateAppender(StitchedTable);
        using var command = db.CreateCommand();
        command.UseStreamingMode = true;
        command.CommandText = $"""
            SELECT {ConnectionFragmentFile.StateColumns("f")}
            FROM read_parquet([{string.Join(", ", files.Select(AggregateSql.Quote))}], hive_partitioning = false) f JOIN {NeighboursTable} n USING (source)
            WHERE {EdgeCondition}
            ORDER BY f.probe_id, {ConnectionFragmentFile.KeyOrder("f")}, f.ts_ns, f.covered
            """;
        using var registration = ct.Register(() => command.Cancel());
        using var reader = command.ExecuteReader();
        var group = new List<ConnectionFragment>();
        void Flush()
        {
            foreach (var c in stitcher.Stitch(group))
            {
                AppendRow(rows.CreateRow(), c).EndRow();
                count++;
            }
            group.Clear();
        }
        while (reader.Read())
        {
            var fragment = ConnectionFragmentFile.Read(reader);
            // Ordered by probe and key: a new probe or key starts a group.
            if (group.Count > 0 && (fragment.ProbeId != group[0].ProbeId || fragment.Key != group[0].Key))
                Flush();
            group.Add(fragment);
        }
        if (group.Count > 0)
            Flush();
        ct.ThrowIfCancellationRequested();
        return count;
    }

    /// <summary>A fragment that may meet one of another capture: the rest are connections as they are.</summary>
    private const string EdgeCondition = "(n.has_earlier AND (f.head_open OR f.covered)) OR (n.has_later AND f.tail_open)";

    /// <summary>One hour in nanoseconds: the span of a merge unit of <c>connections</c>.</summary>
    private const long NsPerHour = 3_600_000_000_000;

    /// <summary>
    /// Writes the date's <c>connections</c> into <paramref name="stagedFolder"/> as merge units below the date: one file
    /// per probe and hour of the connections' first packet, <c>probe=P/HOUR.UNIT.parquet</c>, each sorted by
    /// <c>ts_ns</c> and <c>uid</c>. <c>UNIT</c> is a hash of what the unit's rows are made from: the partial names (and
    /// neighbour flags) of the probe's captures whose frames fall in that hour, and the stitched connections that start
    /// in it. A unit whose file of that name is already in <paramref name="currentFolder"/> (null: none is) is carried over as a hard
    /// link, so a run rewrites only the hours its new captures touch (docs/datasets.md, "Incremental design"). Each
    /// file holds the partials' fragments that meet no other capture's, straight from the files, and the stitched edge
    /// connections (<see cref="Stitch"/>, run first). With anonymisation on, the address classes come from the merged
    /// <c>addr</c> table, which the parse stage classified from the real address (an anonymised address has no class of
    /// its own); without it the tracker classified the same real addresses, so the fragments' own classes stand.
    /// Returns the rows of every unit, written or carried over.
    /// </summary>
    public static long WriteUnits(
        DuckDBConnection db, IReadOnlyList<MergeCapture> captures, string? currentFolder, string stagedFolder,
        string unitSalt, bool anonymised, string copyOptions, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(captures);
        var stitched = StitchedByHour(db);
        var units = new SortedDictionary<(string Probe, long Hour), List<MergeCapture>>();
        foreach (var capture in captures)
        {
            ct.ThrowIfCancellationRequested();
            foreach (var hour in HourList(db, capture))
            {
                if (!units.TryGetValue((capture.ProbeId, hour), out var list))
                    units[(capture.ProbeId, hour)] = list = [];
                list.Add(capture);
            }
        }
        foreach (var key in stitched.Keys)
        {
            if (!units.ContainsKey(key))
                units[key] = [];
        }

        long rows = 0;
        var carried = new List<string>();
        foreach (var ((probe, hour), inputs) in units)
        {
            ct.ThrowIfCancellationRequested();
            var (digest, count) = stitched.GetValueOrDefault((probe, hour));
            var name = MergeUnits.Name(
                MergeUnits.HourSpan(hour),
                [unitSalt, hour.ToString(System.Globalization.CultureInfo.InvariantCulture), $"stitched {digest}/{count}",
                 .. inputs.Select(c => $"{c.Partial}/{c.Earlier}/{c.Later}").Order(StringComparer.Ordinal)]);
            var target = MergeUnits.Place(currentFolder, stagedFolder, probe, name, out bool isCarried);
            if (isCarried)
                carried.Add(target);
            else
                rows += MergeUnits.Write(db, UnitQuery(probe, hour * NsPerHour, (hour + 1) * NsPerHour, inputs.ConvertAll(c => c.File(PartialName)), anonymised), target, copyOptions, ct);
        }
        return rows + MergeUnits.Rows(db, carried);
    }

    /// <summary>Beside a capture's connections partial: the hours its fragments start in, one per line (see <see cref="WriteHours"/>).</summary>
    public const string HoursName = "connections.hours";

    /// <summary>
    /// Records, in the capture's partial folder, the hours (since the epoch, floored) that its fragments start in: the
    /// merge units it feeds (<see cref="MergeUnits.WriteHours"/>). Taken from the fragments, not from the capture's span,
    /// which a bad clock can stretch over years.
    /// </summary>
    public static void WriteHours(DuckDBConnection db, string partialFolder)
    {
        ArgumentNullException.ThrowIfNull(db);
        MergeUnits.WriteHours(Path.Combine(partialFolder, HoursName), ReadHours(db, Path.Combine(partialFolder, PartialName + ".parquet")).Select(h => (long?)h));
    }

    /// <summary>A capture's hours: from its hours file, or from its fragments for a partial written before there was one.</summary>
    private static List<long> HourList(DuckDBConnection db, MergeCapture capture)
    {
        var file = Path.Combine(capture.Folder, HoursName);
        return File.Exists(file)
            ? MergeUnits.ReadHours(file).ConvertAll(h => h!.Value)
            : ReadHours(db, capture.File(PartialName));
    }

    /// <summary>The hours the fragments start in; a fragment always has a first packet, and one without a time would belong to no unit.</summary>
    private static List<long> ReadHours(DuckDBConnection db, string fragments) =>
        MergeUnits.HoursIn(db, fragments, AggregateSql.HourOf("ts_ns")).Where(h => h is not null).Select(h => h!.Value).ToList();

    /// <summary>The hour since the epoch that a time falls in, floored (also before 1970).</summary>
    private static long HourOf(long ns) => ns / NsPerHour - (ns % NsPerHour < 0 ? 1 : 0);

    /// <summary>Per probe and hour, an order-free digest of the stitched connections that start in it, and their number.</summary>
    private static Dictionary<(string Probe, long Hour), (ulong Digest, long Count)> StitchedByHour(DuckDBConnection db)
    {
        var result = new Dictionary<(string, long), (ulong, long)>();
        foreach (var row in Rows(db, $"SELECT probe_id, ts_ns, hash({ConnectionFragmentFile.RowColumns}) FROM {StitchedTable}"))
        {
            var key = ((string)row[0]!, HourOf((long)row[1]!));
            var (digest, count) = result.GetValueOrDefault(key);
            result[key] = (digest ^ (ulong)row[2]!, count + 1);
        }
        return result;
    }

    /// <summary>One unit's rows: its captures' fragments that meet no other capture's and the stitched connections of the probe, starting in [from, to).</summary>
    private static string UnitQuery(string probe, long from, long to, List<string> files, bool anonymised)
    {
        var parts = new List<string>();
        if (files.Count > 0)
        {
            parts.Add($"""
                SELECT {ConnectionFragmentFile.RowColumns}
                FROM read_parquet([{string.Join(", ", files.Select(AggregateSql.Quote))}], hive_partitioning = false) f
                    LEFT JOIN {NeighboursTable} n USING (source)
                WHERE NOT coalesce({EdgeCondition}, false) AND f.ts_ns >= {from} AND f.ts_ns < {to}
                """);
        }
        parts.Add($"SELECT {ConnectionFragmentFile.RowColumns} FROM {StitchedTable} WHERE probe_id = {AggregateSql.Quote(probe)} AND ts_ns >= {from} AND ts_ns < {to}");
        var classes = anonymised
            ? """
              CASE WHEN o.address IS NULL THEN c.orig_type ELSE o.type END AS orig_type,
              CASE WHEN o.address IS NULL THEN c.orig_iid ELSE o.iid_class END AS orig_iid,
              CASE WHEN r.address IS NULL THEN c.resp_type ELSE r.type END AS resp_type,
              CASE WHEN r.address IS NULL THEN c.resp_iid ELSE r.iid_class END AS resp_iid
              """
            : "c.orig_type, c.orig_iid, c.resp_type, c.resp_iid";
        return $"""
            WITH c AS (
                {string.Join("\nUNION ALL\n", parts)}
            )
            SELECT c.uid, {AggregateSql.Timestamp("c.ts_ns")} AS ts, c.ts_ns,
                c.orig_h, c.orig_p, c.resp_h, c.resp_p, c.proto, c.service,
                c.duration_ns / 1e9 AS duration, c.duration_ns,
                c.orig_bytes, c.resp_bytes, c.conn_state, c.missed_bytes, c.history,
                c.orig_pkts, c.orig_ip_bytes, c.resp_pkts, c.resp_ip_bytes,
                c.probe_id, c.encapsulation,
                {classes}
            FROM c
            {(anonymised ? "LEFT JOIN addr o ON o.address = c.orig_h LEFT JOIN addr r ON r.address = c.resp_h" : "")}
            ORDER BY c.ts_ns, c.uid
            """;
    }

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

    /// <summary>Appends the dataset row's columns (<see cref="ConnectionFragmentFile.RowColumnsDdl"/>) of <paramref name="c"/>.</summary>
    private static IDuckDBAppenderRow AppendRow(IDuckDBAppenderRow row, Connection c) => row
        .AppendValue(c.Uid).AppendValue(c.TsNs)
        .AppendValue(c.OrigH).AppendValue(c.OrigP).AppendValue(c.RespH).AppendValue(c.RespP)
        .AppendValue(c.Proto).AppendValue(c.Service).AppendValue(c.DurationNs)
        .AppendValue(c.OrigBytes).AppendValue(c.RespBytes).AppendValue(c.ConnState).AppendValue(c.MissedBytes)
        .AppendValue(c.History).AppendValue(c.OrigPkts).AppendValue(c.OrigIpBytes).AppendValue(c.RespPkts).AppendValue(c.RespIpBytes)
        .AppendValue(c.ProbeId).AppendValue(c.Encapsulation)
        .AppendValue(c.OrigType).AppendValue(c.OrigIid).AppendValue(c.RespType).AppendValue(c.RespIid);

    public void Dispose() => _anonymised.Dispose();

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Connections of capture {Sha256} not computed: its stored capture {Path} is gone (removed by retention?) and the parse stage left no fragments this version can use (parsed before it tracked connections, or in another fragment format, or the file is damaged); the date's connections lack it")]
    private static partial void CaptureGone(ILogger logger, string sha256, string path);

    [LoggerMessage(EventId = 62, Level = LogLevel.Warning, Message = "Connection fragments {Path} of capture {Sha256} are not used: {Problem}; they are tracked again from the stored capture if it is still there")]
    private static partial void FragmentsUnusable(ILogger logger, string sha256, string path, string problem);

    [LoggerMessage(EventId = 61, Level = LogLevel.Warning, Message = "Connections of capture {Sha256} count its duplicate frames: its stored capture {Path} is gone (removed by retention?), so they cannot be left out")]
    private static partial void DuplicatesCounted(ILogger logger, string sha256, string path);
}

/// <summary>
/// Anonymises the addresses of connection packets with the configured key (none when anonymisation is off), once per
/// distinct address: an anonymisation costs 128 AES blocks, a look-up here none of them and no allocation.
/// </summary>
internal sealed class AnonymisedAddresses : IDisposable
{
    private readonly Dictionary<Ipv6Address, Ipv6Address> _images = [];
    private readonly AggregatorOptions? _options;
    private PrefixPreservingAnonymiser? _anonymiser;
    private bool _loaded;

    public AnonymisedAddresses(AggregatorOptions options) => _options = options;

    public AnonymisedAddresses(PrefixPreservingAnonymiser? anonymiser)
    {
        _anonymiser = anonymiser;
        _loaded = true;
    }

    public ConnectionPacket Apply(in ConnectionPacket packet)
    {
        if (!_loaded)
        {
            _anonymiser = AnonymisationKey.FromOptions(_options!);
            _loaded = true;
        }
        if (_anonymiser is not { } anonymiser)
            return packet;
        return packet with { Source = Image(anonymiser, packet.Source), Destination = Image(anonymiser, packet.Destination) };
    }

    private Ipv6Address Image(PrefixPreservingAnonymiser anonymiser, Ipv6Address address)
    {
        ref var image = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_images, address, out bool known);
        if (!known)
            image = anonymiser.Anonymise(address);
        return image;
    }

    /// <summary>Disposes the anonymiser only when loaded here from the options (the parse stage owns the one it passes).</summary>
    public void Dispose()
    {
        if (_options is not null)
            _anonymiser?.Dispose();
    }
}

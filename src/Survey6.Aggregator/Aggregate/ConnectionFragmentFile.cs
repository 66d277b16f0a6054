using System.Data.Common;
using System.Runtime.InteropServices;
using DuckDB.NET.Data;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Parquet;
using Survey6.Aggregator.Parse;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// The format of a capture's connection fragments file (the parse stage's <c>.connections</c> file and the aggregate
/// stage's <c>connections</c> partial): one row per fragment with the dataset row's columns as the fragment stands, and,
/// for fragments another capture's may meet (open at either end, or covered), the tracker's state as typed columns and
/// the replay packets as lists. Schema: docs/datasets.md, "Parquet schemas".
/// </summary>
internal static class ConnectionFragmentFile
{
    /// <summary>Bumped when the columns or their meaning change; in the file's metadata and (through the settings hash) its name.</summary>
    public const int FormatVersion = 3;

    /// <summary>The footer key that holds <see cref="FormatVersion"/>.</summary>
    public const string FormatKey = "survey6.connections.format";

    /// <summary>The dataset row's columns a fragments file carries (the stitched table has them too).</summary>
    public const string RowColumnsDdl = """
        uid VARCHAR, ts_ns BIGINT, orig_h VARCHAR, orig_p USMALLINT, resp_h VARCHAR, resp_p USMALLINT, proto VARCHAR,
        service VARCHAR, duration_ns BIGINT, orig_bytes BIGINT, resp_bytes BIGINT, conn_state VARCHAR, missed_bytes BIGINT,
        history VARCHAR, orig_pkts BIGINT, orig_ip_bytes BIGINT, resp_pkts BIGINT, resp_ip_bytes BIGINT, probe_id VARCHAR,
        encapsulation VARCHAR, orig_type VARCHAR, orig_iid VARCHAR, resp_type VARCHAR, resp_iid VARCHAR
        """;

    public const string RowColumns = """
        uid, ts_ns, orig_h, orig_p, resp_h, resp_p, proto, service, duration_ns, orig_bytes, resp_bytes, conn_state,
        missed_bytes, history, orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes, probe_id, encapsulation,
        orig_type, orig_iid, resp_type, resp_iid
        """;

    /// <summary>Endpoint columns, after the <c>a_</c> or <c>b_</c> prefix, in <see cref="EndpointColumns"/>' order.</summary>
    internal static readonly string[] EndpointFields =
    [
        "state", "prev_state", "seq_known", "did_close", "start", "last_seq", "ack_seq", "contiguous", "ahead",
        "hist_last_syn", "hist_last_fin", "hist_last_rst", "packets", "ip_bytes", "data_bytes", "missed_bytes",
        "fin_count", "retransmit_count", "retransmit_threshold", "zero_window_count", "zero_window_threshold", "gap_count", "gap_threshold",
    ];

    private static readonly string[] StateFields =
    [
        "source", "probe_id", "head_open", "covered", "ts_ns", "last_packet_ns", "history",
        "key_a_high", "key_a_low", "key_b_high", "key_b_low", "key_port_a", "key_port_b", "key_protocol", "key_encapsulation", "key_one_way",
        "last_ts_ns", "orig_is_a", "dns", "attempt_start_ns", "completed_ns", "history_seen",
        .. EndpointFields.Select(f => "a_" + f), .. EndpointFields.Select(f => "b_" + f),
        "ev_ts_ns", "ev_seq", "ev_ack", "ev_data_len", "ev_ip_bytes", "ev_tcp_flags", "ev_window", "ev_bits",
    ];

    /// <summary>The key's columns, as an ORDER BY list that brings one key's fragments together (each column qualified with <paramref name="alias"/>).</summary>
    public static string KeyOrder(string alias) => string.Join(", ", StateFields[7..16].Select(f => alias + "." + f));

    /// <summary>What <see cref="Read"/> needs, as a select list (each column qualified with <paramref name="alias"/>).</summary>
    public static string StateColumns(string alias) => string.Join(", ", StateFields.Select(f => alias + "." + f));

    /// <summary>Bits of <c>ev_bits</c>.</summary>
    private const byte FromABit = 1, DnsBit = 2;

    /// <summary>
    /// Reads the fragment at the reader's current row, which selected <see cref="StateColumns"/> first and in order.
    /// Throws <see cref="InvalidDataException"/> for a row without state (a fragment no other capture's can meet).
    /// </summary>
    public static ConnectionFragment Read(DbDataReader r)
    {
        ArgumentNullException.ThrowIfNull(r);
        int c = 7;
        if (r.IsDBNull(c))
            throw new InvalidDataException($"a connection fragment of source {r.GetString(0)} has no state to stitch");
        var key = new ConnectionKey(
            new Ipv6Address(unchecked((ulong)r.GetInt64(c)), unchecked((ulong)r.GetInt64(c + 1))), r.GetFieldValue<ushort>(c + 4),
            new Ipv6Address(unchecked((ulong)r.GetInt64(c + 2)), unchecked((ulong)r.GetInt64(c + 3))), r.GetFieldValue<ushort>(c + 5),
            r.GetFieldValue<byte>(c + 6), (Encapsulation)r.GetFieldValue<byte>(c + 7), r.GetBoolean(c + 8));
        c += 9;
        long lastTs = r.GetInt64(c), attempt = r.GetInt64(c + 3), completed = r.GetInt64(c + 4);
        bool origIsA = r.GetBoolean(c + 1), dns = r.GetBoolean(c + 2);
        uint seen = r.GetFieldValue<uint>(c + 5);
        c += 6;
        var a = ReadEndpoint(r, c);
        c += EndpointFields.Length;
        var b = ReadEndpoint(r, c);
        c += EndpointFields.Length;
        var state = ConnectionState.Restore(
            key, r.GetInt64(4), lastTs, r.GetInt64(5), origIsA, dns, attempt, completed, seen,
            r.IsDBNull(6) ? "" : r.GetString(6), a, b);

        ConnectionEvent[]? events = null;
        if (!r.IsDBNull(c))
        {
            var ts = r.GetFieldValue<List<long>>(c);
            var seq = r.GetFieldValue<List<uint>>(c + 1);
            var ack = r.GetFieldValue<List<uint>>(c + 2);
            var data = r.GetFieldValue<List<uint>>(c + 3);
            var ip = r.GetFieldValue<List<uint>>(c + 4);
            var flags = r.GetFieldValue<List<ushort>>(c + 5);
            var window = r.GetFieldValue<List<ushort>>(c + 6);
            var bits = r.GetFieldValue<List<byte>>(c + 7);
            int n = ts.Count;
            if (seq.Count != n || ack.Count != n || data.Count != n || ip.Count != n || flags.Count != n || window.Count != n || bits.Count != n)
                throw new InvalidDataException($"connection fragment of source {r.GetString(0)} has event lists of different lengths");
            events = new ConnectionEvent[n];
            for (int i = 0; i < n; i++)
                events[i] = new ConnectionEvent(ts[i], seq[i], ack[i], data[i], ip[i], flags[i], window[i], (bits[i] & FromABit) != 0, (bits[i] & DnsBit) != 0);
        }
        return new ConnectionFragment(r.GetString(1), r.GetString(0), state, r.GetBoolean(2), r.GetBoolean(3), events);
    }

    private static Endpoint ReadEndpoint(DbDataReader r, int c) => new()
    {
        State = (TcpEndpointState)r.GetFieldValue<byte>(c),
        PrevState = (TcpEndpointState)r.GetFieldValue<byte>(c + 1),
        SeqKnown = r.GetBoolean(c + 2),
        DidClose = r.GetBoolean(c + 3),
        Start = r.GetInt64(c + 4),
        LastSeq = r.GetInt64(c + 5),
        AckSeq = r.GetInt64(c + 6),
        Contiguous = r.GetInt64(c + 7),
        Ahead = r.GetInt64(c + 8),
        HistLastSyn = r.GetInt64(c + 9),
        HistLastFin = r.GetInt64(c + 10),
        HistLastRst = r.GetInt64(c + 11),
        Packets = r.GetInt64(c + 12),
        IpBytes = r.GetInt64(c + 13),
        DataBytes = r.GetInt64(c + 14),
        MissedBytes = r.GetInt64(c + 15),
        FinCount = r.GetFieldValue<uint>(c + 16),
        RetransmitCount = r.GetFieldValue<uint>(c + 17),
        RetransmitThreshold = r.GetFieldValue<uint>(c + 18),
        ZeroWindowCount = r.GetFieldValue<uint>(c + 19),
        ZeroWindowThreshold = r.GetFieldValue<uint>(c + 20),
        GapCount = r.GetFieldValue<uint>(c + 21),
        GapThreshold = r.GetFieldValue<uint>(c + 22),
    };

    /// <summary>
    /// Why <paramref name="file"/> cannot be used as a fragments file of this version (damaged, not Parquet, no or
    /// another <see cref="FormatKey"/>); null when it can. Reads only the footer.
    /// </summary>
    public static string? Problem(DuckDBConnection db, string file)
    {
        ArgumentNullException.ThrowIfNull(db);
        try
        {
            var value = FormatOf(db, file);
            string expected = FormatVersion.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return value switch
            {
                null => "it has no fragment format in its metadata",
                _ when value == expected => null,
                _ => $"it has fragment format {value}, this version reads {expected}",
            };
        }
        catch (DuckDBException e)
        {
            return "it cannot be read as Parquet: " + e.Message;
        }
    }

    /// <summary>
    /// The fragment format <paramref name="file"/>'s footer names (<see cref="FormatKey"/>), or null when it names none, as
    /// the files written before formats were recorded. Throws <see cref="DuckDBException"/> when it is not Parquet.
    /// </summary>
    public static string? FormatOf(DuckDBConnection db, string file)
    {
        ArgumentNullException.ThrowIfNull(db);
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT decode(value) FROM parquet_kv_metadata({AggregateSql.Quote(file)}) WHERE decode(key) = {AggregateSql.Quote(FormatKey)}";
        return command.ExecuteScalar() as string;
    }

    /// <summary>
    /// Whether a fragments file that names format <paramref name="format"/> (null: none) is of a format older than this
    /// version's, which no reader of this version uses.
    /// </summary>
    public static bool IsOlderFormat(string? format) =>
        format is null || (int.TryParse(format, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n < FormatVersion);

    /// <summary>Reads every fragment of a file (all of them must carry state): for tests and tools, not the merge.</summary>
    public static List<ConnectionFragment> ReadAll(DuckDBConnection db, string file)
    {
        ArgumentNullException.ThrowIfNull(db);
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT {StateColumns("f")} FROM read_parquet({AggregateSql.Quote(file)}, hive_partitioning = false) f";
        using var reader = command.ExecuteReader();
        var fragments = new List<ConnectionFragment>();
        while (reader.Read())
            fragments.Add(Read(reader));
        return fragments;
    }
}

/// <summary>
/// Writes one fragments file (<see cref="ConnectionFragmentFile"/>) with survey6's Parquet writer, as the packets file
/// is written: rows go into column arrays and strings into a per-row-group table, so adding a fragment makes no heap
/// objects of its own (no row record, strings or blob). Only fragments another capture's may meet keep their state and
/// replay packets; the rest have nulls there.
/// </summary>
internal sealed class ConnectionPartialWriter : IDisposable
{
    private const int RowGroupRows = 1 << 16;
    private const int InitialRows = 1024;

    // The last closed writer, kept for its grown column buffers: allocating them again for every capture (about a
    // hundred columns of up to a row group each) was most of the parse pass's allocation, and its full collections.
    private static ConnectionPartialWriter? s_idle;

    /// <summary>Drops the idle writer's buffers (<see cref="Parse.ParseBuffers.Release"/>).</summary>
    internal static void ReleaseIdle() => Interlocked.Exchange(ref s_idle, null);

    private FileStream? _stream;
    private ParquetFileWriter? _writer;
    private readonly List<Column> _columns = [];
    private readonly StringTable _strings = new();
    private readonly DictionaryMap _map = new();
    private readonly ValueDictionary _values = new();
    private readonly ChunkBuilder _chunk = new();
    private readonly AddressTable _addresses = new();
    private readonly Dictionary<string, int> _histories = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _historyLookup;
    private byte[] _probeUtf8 = [];
    private string? _probeOfUtf8;
    private int _rows;
    private int _allocated = InitialRows;
    private bool _complete;
    private bool _disposed = true;

    private readonly StringColumn _source, _probe;
    private readonly RequiredColumn<long> _lastPacket;
    private readonly RequiredColumn<bool> _headOpen, _covered, _tailOpen;
    private readonly StringColumn _uid;
    private readonly RequiredColumn<long> _ts;
    private readonly StringColumn _origH, _respH;
    private readonly RequiredColumn<ushort> _origP, _respP;
    private readonly StringColumn _proto, _service;
    private readonly NullableColumn<long> _duration, _origBytes, _respBytes;
    private readonly StringColumn _connState;
    private readonly RequiredColumn<long> _missed;
    private readonly StringColumn _history;
    private readonly RequiredColumn<long> _origPkts, _origIpBytes, _respPkts, _respIpBytes;
    private readonly StringColumn _encapsulation, _origType, _origIid, _respType, _respIid;

    // The state of a fragment that may be stitched (null otherwise).
    private readonly NullableColumn<long> _keyAHigh, _keyALow, _keyBHigh, _keyBLow;
    private readonly NullableColumn<ushort> _keyPortA, _keyPortB;
    private readonly NullableColumn<byte> _keyProtocol, _keyEncapsulation;
    private readonly NullableColumn<bool> _keyOneWay;
    private readonly NullableColumn<long> _lastTs;
    private readonly NullableColumn<bool> _origIsA, _dns;
    private readonly NullableColumn<long> _attemptStart, _completed;
    private readonly NullableColumn<uint> _historySeen;
    private readonly EndpointColumns _a, _b;
    private readonly ValueListColumn<long> _evTs;
    private readonly ValueListColumn<uint> _evSeq, _evAck, _evData, _evIp;
    private readonly ValueListColumn<ushort> _evFlags, _evWindow;
    private readonly ValueListColumn<byte> _evBits;

    private ConnectionPartialWriter()
    {
        _historyLookup = _histories.GetAlternateLookup<ReadOnlySpan<char>>();
        int n = _allocated;
        var s = _strings;
        var m = _map;
        var v = _values;
        Add(
            _source = new("source", n, s, m), _lastPacket = new("last_packet_ns", n),
            _headOpen = new("head_open", n), _covered = new("covered", n), _tailOpen = new("tail_open", n),
            _uid = new("uid", n, s, m), _ts = new("ts_ns", n), _origH = new("orig_h", n, s, m), _origP = new("orig_p", n, v),
            _respH = new("resp_h", n, s, m), _respP = new("resp_p", n, v), _proto = new("proto", n, s, m), _service = new("service", n, s, m),
            _duration = new("duration_ns", n), _origBytes = new("orig_bytes", n), _respBytes = new("resp_bytes", n),
            _connState = new("conn_state", n, s, m), _missed = new("missed_bytes", n), _history = new("history", n, s, m),
            _origPkts = new("orig_pkts", n), _origIpBytes = new("orig_ip_bytes", n), _respPkts = new("resp_pkts", n), _respIpBytes = new("resp_ip_bytes", n),
            _probe = new("probe_id", n, s, m), _encapsulation = new("encapsulation", n, s, m),
            _origType = new("orig_type", n, s, m), _origIid = new("orig_iid", n, s, m), _respType = new("resp_type", n, s, m), _respIid = new("resp_iid", n, s, m),
            _keyAHigh = new("key_a_high", n), _keyALow = new("key_a_low", n), _keyBHigh = new("key_b_high", n), _keyBLow = new("key_b_low", n),
            _keyPortA = new("key_port_a", n, v), _keyPortB = new("key_port_b", n, v), _keyProtocol = new("key_protocol", n, v),
            _keyEncapsulation = new("key_encapsulation", n, v), _keyOneWay = new("key_one_way", n),
            _lastTs = new("last_ts_ns", n), _origIsA = new("orig_is_a", n), _dns = new("dns", n),
            _attemptStart = new("attempt_start_ns", n), _completed = new("completed_ns", n), _historySeen = new("history_seen", n, v));
        _a = new EndpointColumns("a_", n, v);
        _b = new EndpointColumns("b_", n, v);
        Add(_a.Columns);
        Add(_b.Columns);
        Add(
            _evTs = new("ev_ts_ns", n, delta: true), _evSeq = new("ev_seq", n), _evAck = new("ev_ack", n),
            _evData = new("ev_data_len", n, v), _evIp = new("ev_ip_bytes", n, v), _evFlags = new("ev_tcp_flags", n, v),
            _evWindow = new("ev_window", n, v), _evBits = new("ev_bits", n, v));
    }

    /// <summary>Starts <paramref name="file"/> (created or overwritten).</summary>
    /// <param name="keyId">The anonymisation key the addresses were anonymised with, recorded in the metadata as the packets files do.</param>
    public static ConnectionPartialWriter Open(string file, string? keyId) => Open(file, keyId, reuseBuffers: false);

    /// <summary>
    /// <see cref="Open(string, string?)"/> with the buffers of the last writer opened this way and closed, which this
    /// one gives back when it is closed. For the parse pass only, which closes each writer exactly once: a second
    /// Dispose of a writer already given back would close the file of whoever took it next.
    /// </summary>
    internal static ConnectionPartialWriter OpenReusingBuffers(string file, string? keyId) => Open(file, keyId, reuseBuffers: true);

    private static ConnectionPartialWriter Open(string file, string? keyId, bool reuseBuffers)
    {
        ArgumentNullException.ThrowIfNull(file);
        var w = (reuseBuffers ? Interlocked.Exchange(ref s_idle, null) : null) ?? new ConnectionPartialWriter();
        w._reusable = reuseBuffers;
        try
        {
            w.Start(file, keyId);
        }
        catch
        {
            if (reuseBuffers)
                Interlocked.Exchange(ref s_idle, w);
            throw;
        }
        return w;
    }

    private bool _reusable;

    private void Start(string file, string? keyId)
    {
        var keyValues = new Dictionary<string, string>
        {
            ["survey6.dataset"] = "connection-fragments",
            [ConnectionFragmentFile.FormatKey] = ConnectionFragmentFile.FormatVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (keyId is not null)
            keyValues[AnonymisationMetadata.KeyIdKey] = keyId;
        _stream = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        try
        {
            _writer = new ParquetFileWriter(_stream, _columns.Select(c => c.Spec).ToArray(), keyValues);
        }
        catch
        {
            _stream.Dispose();
            _stream = null;
            throw;
        }
        _rows = 0;
        Count = 0;
        _probeOfUtf8 = null;
        _complete = false;
        _disposed = false;
    }

    public long Count { get; private set; }

    public void Add(IReadOnlyList<ConnectionFragment> fragments)
    {
        ArgumentNullException.ThrowIfNull(fragments);
        ObjectDisposedException.ThrowIf(_complete || _disposed, this);
        foreach (var f in fragments)
            Add(f);
    }

    private void Add(ConnectionFragment f)
    {
        if (!ReferenceEquals(_probeOfUtf8, f.ProbeId))
        {
            // A capture's fragments share one probe id string: encoded once per file, not per fragment.
            _probeOfUtf8 = f.ProbeId;
            _probeUtf8 = System.Text.Encoding.UTF8.GetBytes(f.ProbeId);
        }
        if (_rows == _allocated)
        {
            _allocated = Math.Min(_allocated * 2, RowGroupRows);
            foreach (var column in _columns)
                column.Resize(_allocated);
        }

        int i = _rows++;
        var s = f.State;
        var key = s.Key;
        _source.Codes[i] = StaticCode(f.Source);
        _probe.Codes[i] = StaticCode(f.ProbeId);
        _lastPacket.Values[i] = s.LastPacketNs;
        _headOpen.Values[i] = f.HeadOpen;
        _covered.Values[i] = f.Covered;
        _tailOpen.Values[i] = f.TailOpen;

        Connection.WriteUid(_probeUtf8, key, s.FirstTimestampNs, _strings.Reserve(Connection.UidLength));
        _uid.Codes[i] = _strings.Commit(Connection.UidLength);
        _ts.Values[i] = s.FirstTimestampNs;
        var orig = Address(s.OrigAddress);
        var resp = Address(s.RespAddress);
        _origH.Codes[i] = orig.Text;
        _origType.Codes[i] = orig.Type;
        _origIid.Codes[i] = orig.Iid;
        _respH.Codes[i] = resp.Text;
        _respType.Codes[i] = resp.Type;
        _respIid.Codes[i] = resp.Iid;
        _origP.Values[i] = s.OrigPort;
        _respP.Values[i] = s.RespPort;
        _proto.Codes[i] = StaticCode(key.ProtocolName);
        _service.Codes[i] = s.Dns ? StaticCode(Connection.DnsService) : -1;
        long? duration = s.DurationNs;
        _duration.Values[i] = duration;
        _origBytes.Values[i] = duration is null ? null : s.OrigBytes;
        _respBytes.Values[i] = duration is null ? null : s.RespBytes;
        _connState.Codes[i] = StaticCode(s.ConnState);
        _missed.Values[i] = s.MissedBytes;
        _history.Codes[i] = HistoryCode(s.HistoryChars);
        _origPkts.Values[i] = s.OrigPackets;
        _origIpBytes.Values[i] = s.OrigIpBytes;
        _respPkts.Values[i] = s.RespPackets;
        _respIpBytes.Values[i] = s.RespIpBytes;
        _encapsulation.Codes[i] = StaticCode(ProtocolNames.Encapsulation(key.Encapsulation));

        // Only a fragment another capture may continue, or that may continue one, needs its state for the stitcher.
        bool stitchable = f.HeadOpen || f.Covered || f.TailOpen;
        _keyAHigh.Values[i] = stitchable ? unchecked((long)key.AddressA.High) : null;
        _keyALow.Values[i] = stitchable ? unchecked((long)key.AddressA.Low) : null;
        _keyBHigh.Values[i] = stitchable ? unchecked((long)key.AddressB.High) : null;
        _keyBLow.Values[i] = stitchable ? unchecked((long)key.AddressB.Low) : null;
        _keyPortA.Values[i] = stitchable ? key.PortA : null;
        _keyPortB.Values[i] = stitchable ? key.PortB : null;
        _keyProtocol.Values[i] = stitchable ? key.Protocol : null;
        _keyEncapsulation.Values[i] = stitchable ? (byte)key.Encapsulation : null;
        _keyOneWay.Values[i] = stitchable ? key.OneWay : null;
        _lastTs.Values[i] = stitchable ? s.LastTimestampNs : null;
        _origIsA.Values[i] = stitchable ? s.OrigIsA : null;
        _dns.Values[i] = stitchable ? s.Dns : null;
        _attemptStart.Values[i] = stitchable ? s.AttemptStartNs : null;
        _completed.Values[i] = stitchable ? s.CompletedNs : null;
        _historySeen.Values[i] = stitchable ? s.HistorySeen : null;
        _a.Set(i, stitchable, s.A);
        _b.Set(i, stitchable, s.B);

        var events = stitchable ? f.Events : null;
        int count = events?.Length ?? -1;
        _evTs.Counts[i] = _evSeq.Counts[i] = _evAck.Counts[i] = _evData.Counts[i] = count;
        _evIp.Counts[i] = _evFlags.Counts[i] = _evWindow.Counts[i] = _evBits.Counts[i] = count;
        foreach (ref readonly var e in events.AsSpan())
        {
            _evTs.Append(e.TimestampNs);
            _evSeq.Append(e.Sequence);
            _evAck.Append(e.Acknowledgement);
            _evData.Append(e.DataLength);
            _evIp.Append(e.IpBytes);
            _evFlags.Append(e.TcpFlags);
            _evWindow.Append(e.Window);
            _evBits.Append((byte)((e.FromA ? 1 : 0) | (e.Dns ? 2 : 0)));
        }

        Count++;
        if (_rows == RowGroupRows)
            FlushRowGroup();
    }

    /// <summary>Writes the rows buffered and the footer, and closes the file (the caller makes it durable as it publishes it).</summary>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_complete || _disposed, this);
        FlushRowGroup();
        (_writer ?? throw new ObjectDisposedException(nameof(ConnectionPartialWriter))).Finish();
        _complete = true;
        Dispose();
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _writer?.Dispose();
        _stream?.Dispose();
        _writer = null;
        _stream = null;
        // Whatever a failed file left buffered is dropped: the next file starts with empty row-group state.
        ClearRowGroup();
        if (_reusable)
            Interlocked.Exchange(ref s_idle, this);
    }

    private void FlushRowGroup()
    {
        // A file without fragments has no row group: its footer still gives readers the columns.
        if (_rows == 0)
            return;
        var writer = _writer ?? throw new ObjectDisposedException(nameof(ConnectionPartialWriter));
        writer.BeginRowGroup(_rows);
        foreach (var column in _columns)
        {
            _chunk.Reset();
            column.Encode(_rows, _chunk);
            writer.WriteChunk(_chunk);
        }
        writer.EndRowGroup();
        ClearRowGroup();
    }

    private void ClearRowGroup()
    {
        _rows = 0;
        _strings.Clear();
        _addresses.Clear();
        _histories.Clear();
        _evTs.Reset();
        _evSeq.Reset();
        _evAck.Reset();
        _evData.Reset();
        _evIp.Reset();
        _evFlags.Reset();
        _evWindow.Reset();
        _evBits.Reset();
    }

    private AddressTable.Codes Address(Ipv6Address address)
    {
        ref var slot = ref _addresses.Find(address, out bool exists);
        if (!exists)
        {
            // The addresses are already anonymised when anonymisation is on: these classes are the fallback the merge
            // uses only where the addr table (classified before anonymisation) lacks the address.
            var info = Ipv6AddressClassifier.Classify(address);
            int text = _strings.Commit(address.Format(_strings.Reserve(Ipv6Address.MaxTextLength)));
            slot = new AddressTable.Codes(
                text,
                StaticCode(Ipv6AddressClassifier.TypeName(info.Type)),
                info.IidClass == IidClass.None ? -1 : StaticCode(Ipv6AddressClassifier.IidName(info.IidClass)));
        }
        return slot;
    }

    private int StaticCode(string name) => _strings.Static(name);

    /// <summary>Histories repeat a lot: one string per distinct history and row group, none per fragment.</summary>
    private int HistoryCode(ReadOnlySpan<char> history)
    {
        if (history.IsEmpty)
            return -1;
        if (_historyLookup.TryGetValue(history, out int code))
            return code;
        code = _strings.Add(history);
        _historyLookup[history] = code;
        return code;
    }

    private void Add(params Column[] columns) => _columns.AddRange(columns);

    /// <summary>One endpoint's state columns, in <c>EndpointFields</c>' order.</summary>
    private sealed class EndpointColumns
    {
        private readonly NullableColumn<byte> _state, _prevState;
        private readonly NullableColumn<bool> _seqKnown, _didClose;
        private readonly NullableColumn<long>[] _longs;
        private readonly NullableColumn<uint>[] _counters;

        public EndpointColumns(string prefix, int n, ValueDictionary values)
        {
            var fields = ConnectionFragmentFile.EndpointFields;
            _state = new(prefix + fields[0], n, values);
            _prevState = new(prefix + fields[1], n, values);
            _seqKnown = new(prefix + fields[2], n);
            _didClose = new(prefix + fields[3], n);
            _longs = fields[4..16].Select(name => new NullableColumn<long>(prefix + name, n)).ToArray();
            _counters = fields[16..].Select(name => new NullableColumn<uint>(prefix + name, n, values)).ToArray();
            Columns = [_state, _prevState, _seqKnown, _didClose, .. _longs, .. _counters];
        }

        public Column[] Columns { get; }

        public void Set(int i, bool present, in Endpoint e)
        {
            if (!present)
            {
                _state.Values[i] = _prevState.Values[i] = null;
                _seqKnown.Values[i] = _didClose.Values[i] = null;
                foreach (var c in _longs)
                    c.Values[i] = null;
                foreach (var c in _counters)
                    c.Values[i] = null;
                return;
            }
            _state.Values[i] = (byte)e.State;
            _prevState.Values[i] = (byte)e.PrevState;
            _seqKnown.Values[i] = e.SeqKnown;
            _didClose.Values[i] = e.DidClose;
            _longs[0].Values[i] = e.Start;
            _longs[1].Values[i] = e.LastSeq;
            _longs[2].Values[i] = e.AckSeq;
            _longs[3].Values[i] = e.Contiguous;
            _longs[4].Values[i] = e.Ahead;
            _longs[5].Values[i] = e.HistLastSyn;
            _longs[6].Values[i] = e.HistLastFin;
            _longs[7].Values[i] = e.HistLastRst;
            _longs[8].Values[i] = e.Packets;
            _longs[9].Values[i] = e.IpBytes;
            _longs[10].Values[i] = e.DataBytes;
            _longs[11].Values[i] = e.MissedBytes;
            _counters[0].Values[i] = e.FinCount;
            _counters[1].Values[i] = e.RetransmitCount;
            _counters[2].Values[i] = e.RetransmitThreshold;
            _counters[3].Values[i] = e.ZeroWindowCount;
            _counters[4].Values[i] = e.ZeroWindowThreshold;
            _counters[5].Values[i] = e.GapCount;
            _counters[6].Values[i] = e.GapThreshold;
        }
    }
}

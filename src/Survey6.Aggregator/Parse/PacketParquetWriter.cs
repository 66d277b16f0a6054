using System.IO.Hashing;
using System.Runtime.InteropServices;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Parquet;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Parse;

/// <summary>
/// Writes dissected frames as one <c>packets</c> Parquet file (zstd), one row per frame, in row groups of a fixed
/// number of rows. Rows go into column arrays (grown up to the row group size, reused for every row group); strings are interned per row group in a
/// <see cref="StringTable"/>, so adding a frame allocates nothing, and each string column's dictionary comes
/// straight from the interned codes. Columns: docs/datasets.md.
/// </summary>
public sealed class PacketParquetWriter : IDisposable
{
    private readonly int _capacity;
    private readonly StringTable _strings = new();
    private readonly DictionaryMap _map = new();
    private readonly ValueDictionary _values = new();
    private readonly ChunkBuilder _chunk = new();
    private readonly List<Column> _columns = [];
    private readonly List<StringListColumn> _lists = [];

    // Buffers start at this many rows and double as needed: most captures are far smaller than a row group.
    private const int InitialRows = 4096;

    private static PacketParquetWriter? s_idle;

    /// <summary>Drops the idle writer's buffers (<see cref="ParseBuffers.Release"/>).</summary>
    internal static void ReleaseIdle() => Interlocked.Exchange(ref s_idle, null);

    private ParquetFileWriter? _writer;
    private PrefixPreservingAnonymiser? _anonymiser;
    private bool _open;
    private int _rows;
    private int _allocated;

    // Interning: value -> code in _strings; all cleared with the table after each row group.
    private readonly AddressTable _addresses = new();
    private readonly Dictionary<uint, int> _ipv4 = [];
    private readonly Dictionary<UInt128, int> _paths = [];
    private readonly Dictionary<ChainKey, int> _chains = [];
    private readonly Dictionary<uint, int> _anomalies = [];
    private readonly Dictionary<PrefixKey, int> _prefixes = [];
    private readonly Dictionary<UInt128, int> _names = [];
    private readonly int[] _encapsulationCodes = NewEnumCache();
    private readonly int[] _transportCodes = NewEnumCache();

    // Capture metadata.
    private readonly ConstantStringColumn _captureSha = new("capture_sha256");
    private readonly ConstantStringColumn _probeId = new("probe_id");
    private readonly ConstantStringColumn _labels = new("labels");
    private readonly ConstantColumn<double> _latitude = new("location_lat");
    private readonly ConstantColumn<double> _longitude = new("location_lon");
    private readonly ConstantStringColumn _country = new("location_country");
    private readonly ConstantStringColumn _city = new("location_city");
    private readonly ConstantColumn<long> _windowStartTime = new("window_start", timestamp: true);
    private readonly ConstantColumn<long> _windowEndTime = new("window_end", timestamp: true);
    private readonly ConstantColumn<long> _windowStart = new("window_start_ns");
    private readonly ConstantColumn<long> _windowEnd = new("window_end_ns");
    private readonly ConstantColumn<long> _ifDropped = new("if_dropped");
    private readonly ConstantColumn<long> _osDropped = new("os_dropped");

    // The record (docs/records.md), wire view then flow view.
    private readonly RequiredColumn<long> _frame;
    private readonly NullableColumn<long> _ts;
    private readonly NullableColumn<long> _time;
    private readonly RequiredColumn<uint> _frameLen;
    private readonly RequiredColumn<uint> _capLen;
    private readonly RequiredColumn<ushort> _linkType;
    private readonly RequiredColumn<int> _interfaceId;
    private readonly StringColumn _path;
    private readonly StringColumn _encapsulation;
    private readonly RequiredColumn<byte> _ipv6Headers;
    private readonly NullableColumn<ushort> _vlanId;
    private readonly StringColumn _ipv4Src;
    private readonly StringColumn _ipv4Dst;
    private readonly StringColumn _src;
    private readonly StringColumn _dst;
    private readonly NullableColumn<byte> _nextHeader;
    private readonly NullableColumn<byte> _hopLimit;
    private readonly NullableColumn<uint> _flowLabel;
    private readonly NullableColumn<byte> _trafficClass;
    private readonly NullableColumn<ushort> _payloadLength;
    private readonly StringColumn _extChain;
    private readonly NullableColumn<ushort> _fragOffset;
    private readonly NullableColumn<bool> _fragMore;
    private readonly NullableColumn<uint> _fragId;
    private readonly NullableColumn<byte> _routingType;
    private readonly NullableColumn<byte> _segmentsLeft;
    private readonly NullableColumn<byte> _mobilityType;
    private readonly NullableColumn<uint> _ahSpi;
    private readonly NullableColumn<uint> _espSpi;
    private readonly StringColumn _flowSrc;
    private readonly StringColumn _flowDst;
    private readonly NullableColumn<byte> _flowProtocol;
    private readonly NullableColumn<ushort> _flowSrcPort;
    private readonly NullableColumn<ushort> _flowDstPort;
    private readonly NullableColumn<uint> _flowPayloadLen;
    private readonly StringColumn _srcType;
    private readonly StringColumn _srcIid;
    private readonly StringColumn _dstType;
    private readonly StringColumn _dstIid;
    private readonly NullableColumn<ushort> _tcpFlags;
    private readonly NullableColumn<byte> _icmpType;
    private readonly NullableColumn<byte> _icmpCode;
    private readonly StringColumn _ndTarget;
    private readonly StringListColumn _raPrefixes;
    private readonly StringColumn _dnsTransport;
    private readonly NullableColumn<bool> _dnsResponse;
    private readonly StringColumn _dnsQname;
    private readonly NullableColumn<ushort> _dnsQtype;
    private readonly NullableColumn<byte> _dnsRcode;
    private readonly StringListColumn _dnsAaaa;
    private readonly StringColumn _anomalyNames;
    private readonly RequiredColumn<bool> _malformed;
    private readonly RequiredColumn<bool> _truncated;
    private readonly RequiredColumn<long> _frameHash;

    private PacketParquetWriter(int capacity)
    {
        _capacity = capacity;
        _allocated = Math.Min(capacity, InitialRows);
        var s = _strings;
        var m = _map;
        var v = _values;
        int n = _allocated;
        Add(_captureSha, _probeId, _labels, _latitude, _longitude, _country, _city, _windowStartTime, _windowEndTime, _windowStart, _windowEnd, _ifDropped, _osDropped);

        Add(
            _frame = new("frame", n, delta: true), _ts = new("ts", n, timestamp: true), _time = new("time_epoch_ns", n, delta: true), _frameLen = new("frame_len", n, v), _capLen = new("cap_len", n, v),
            _linkType = new("link_type", n, v), _interfaceId = new("interface_id", n, v), _path = new("path", n, s, m),
            _encapsulation = new("encapsulation", n, s, m), _ipv6Headers = new("ipv6_headers", n, v), _vlanId = new("vlan_id", n, v),
            _ipv4Src = new("ipv4_src", n, s, m), _ipv4Dst = new("ipv4_dst", n, s, m), _src = new("src", n, s, m), _dst = new("dst", n, s, m),
            _nextHeader = new("next_header", n, v), _hopLimit = new("hop_limit", n, v), _flowLabel = new("flow_label", n, v),
            _trafficClass = new("traffic_class", n, v), _payloadLength = new("payload_length", n, v), _extChain = new("ext_chain", n, s, m),
            _fragOffset = new("frag_offset", n, v), _fragMore = new("frag_more", n), _fragId = new("frag_id", n, v),
            _routingType = new("routing_type", n, v), _segmentsLeft = new("segments_left", n, v), _mobilityType = new("mobility_type", n, v),
            _ahSpi = new("ah_spi", n, v), _espSpi = new("esp_spi", n, v),
            _flowSrc = new("flow_src", n, s, m), _flowDst = new("flow_dst", n, s, m), _flowProtocol = new("flow_protocol", n, v),
            _flowSrcPort = new("flow_src_port", n, v), _flowDstPort = new("flow_dst_port", n, v), _flowPayloadLen = new("flow_payload_len", n, v),
            _srcType = new("src_type", n, s, m), _srcIid = new("src_iid", n, s, m), _dstType = new("dst_type", n, s, m), _dstIid = new("dst_iid", n, s, m),
            _tcpFlags = new("tcp_flags", n, v), _icmpType = new("icmpv6_type", n, v), _icmpCode = new("icmpv6_code", n, v),
            _ndTarget = new("nd_target", n, s, m), _raPrefixes = new("ra_prefixes", n, s, m),
            _dnsTransport = new("dns_transport", n, s, m), _dnsResponse = new("dns_response", n), _dnsQname = new("dns_qname", n, s, m),
            _dnsQtype = new("dns_qtype", n, v), _dnsRcode = new("dns_rcode", n, v), _dnsAaaa = new("dns_aaaa", n, s, m),
            _anomalyNames = new("anomalies", n, s, m), _malformed = new("malformed", n), _truncated = new("truncated", n),
            _frameHash = new("frame_hash", n));
    }


    /// <summary>Column names in file order.</summary>
    public static IReadOnlyList<string> ColumnNames { get; } = new PacketParquetWriter(1)._columns.Select(c => c.Spec.Name).ToArray();

    /// <summary>Rows added so far (written or buffered).</summary>
    public long Rows { get; private set; }

    /// <summary>True when the buffered row group is full and must be flushed before the next <see cref="Add"/>.</summary>
    public bool IsFull => _rows == _capacity;

    /// <summary>
    /// Starts a packets file on <paramref name="output"/>; the stream is left open. With an
    /// <paramref name="anonymiser"/>, every address and prefix is written anonymised (once per distinct value and row
    /// group, where its text is made) and the file's metadata names the key.
    /// </summary>
    public static PacketParquetWriter Create(Stream output, PacketFileMetadata metadata, int rowGroupSize, PrefixPreservingAnonymiser? anonymiser = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(metadata);
        // Reuse the last writer's grown buffers: allocating and zeroing them again for every capture costs page faults.
        var w = Interlocked.Exchange(ref s_idle, null);
        if (w is null || w._capacity != rowGroupSize)
            w = new PacketParquetWriter(rowGroupSize);
        w._open = true;
        w._anonymiser = anonymiser;
        w.SetMetadata(metadata);
        var keyValues = new Dictionary<string, string>
        {
            ["survey6.dataset"] = "packets",
            ["survey6.capture_sha256"] = metadata.Sha256,
            ["survey6.probe_id"] = metadata.ProbeId,
        };
        if (anonymiser is not null)
            keyValues[AnonymisationMetadata.KeyIdKey] = anonymiser.KeyId;
        w._writer = new ParquetFileWriter(output, w._columns.Select(c => c.Spec).ToArray(), keyValues);
        return w;
    }

    /// <summary>Appends one dissected frame; <paramref name="captured"/> is the frame's captured bytes (for the content hash).</summary>
    public void Add(in PacketRecord r, ReadOnlySpan<byte> captured)
    {
        if (_rows == _allocated)
        {
            if (_allocated == _capacity)
                throw new InvalidOperationException("The row group is full; flush it first.");
            _allocated = (int)Math.Min((long)_allocated * 2, _capacity);
            foreach (var column in _columns)
                column.Resize(_allocated);
        }
        int i = _rows++;
        Rows++;
        var p = r.Present;

        _frame.Values[i] = r.FrameNumber;
        // The typed time truncates to microseconds (as DuckDB and Arrow cast); time_epoch_ns keeps the exact value.
        _ts.Values[i] = r.HasTimestamp ? r.TimestampNanoseconds / 1000 : null;
        _time.Values[i] = r.HasTimestamp ? r.TimestampNanoseconds : null;
        _frameLen.Values[i] = r.FrameLength;
        _capLen.Values[i] = r.CapturedLength;
        _linkType.Values[i] = (ushort)r.LinkType;
        _interfaceId.Values[i] = r.InterfaceId;
        _path.Codes[i] = r.PathLength > 0 ? PathCode(r) : -1;
        _encapsulation.Codes[i] = r.HasIpv6 ? EnumCode(_encapsulationCodes, (int)r.Encapsulation, r.Encapsulation, static e => ProtocolNames.Encapsulation(e)) : -1;
        _ipv6Headers.Values[i] = r.Ipv6HeaderCount;
        _vlanId.Values[i] = r.VlanCount > 0 ? r.VlanId : null;
        if ((p & FieldPresence.Ipv4Header) != 0)
        {
            _ipv4Src.Codes[i] = Ipv4Code(r.Ipv4Source);
            _ipv4Dst.Codes[i] = Ipv4Code(r.Ipv4Destination);
        }
        else
        {
            _ipv4Src.Codes[i] = _ipv4Dst.Codes[i] = -1;
        }
        AddressTable.Codes wireSource = default, wireDestination = default;
        bool hasSource = (p & FieldPresence.Ipv6Source) != 0, hasDestination = (p & FieldPresence.Ipv6Destination) != 0;
        if (hasSource)
            wireSource = Address(r.Ipv6Source);
        if (hasDestination)
            wireDestination = Address(r.Ipv6Destination);
        _src.Codes[i] = hasSource ? wireSource.Text : -1;
        _dst.Codes[i] = hasDestination ? wireDestination.Text : -1;
        _nextHeader.Values[i] = (p & FieldPresence.Ipv6NextHeader) != 0 ? r.Ipv6NextHeader : null;
        _hopLimit.Values[i] = (p & FieldPresence.Ipv6HopLimit) != 0 ? r.Ipv6HopLimit : null;
        _flowLabel.Values[i] = (p & FieldPresence.Ipv6FlowLabel) != 0 ? r.Ipv6FlowLabel : null;
        _trafficClass.Values[i] = (p & FieldPresence.Ipv6TrafficClass) != 0 ? r.Ipv6TrafficClass : null;
        _payloadLength.Values[i] = (p & FieldPresence.Ipv6PayloadLength) != 0 ? r.Ipv6PayloadLength : null;
        _extChain.Codes[i] = r.ExtensionCount > 0 ? ChainCode(r) : -1;
        bool fragment = (p & FieldPresence.Fragment) != 0;
        _fragOffset.Values[i] = fragment ? r.FragmentOffset : null;
        _fragMore.Values[i] = fragment ? r.FragmentMore : null;
        _fragId.Values[i] = fragment ? r.FragmentId : null;
        bool routing = (p & FieldPresence.Routing) != 0;
        _routingType.Values[i] = routing ? r.RoutingType : null;
        _segmentsLeft.Values[i] = routing ? r.SegmentsLeft : null;
        _mobilityType.Values[i] = (p & FieldPresence.MobilityType) != 0 ? r.MobilityType : null;
        _ahSpi.Values[i] = (p & FieldPresence.AhSpi) != 0 ? r.AhSpi : null;
        _espSpi.Values[i] = (p & FieldPresence.EspSpi) != 0 ? r.EspSpi : null;

        if ((p & FieldPresence.Flow) != 0)
        {
            // Without tunnels the flow view is the outer header: skip the second look-up.
            var source = hasSource && r.FlowSource == r.Ipv6Source ? wireSource : Address(r.FlowSource);
            var destination = hasDestination && r.FlowDestination == r.Ipv6Destination ? wireDestination : Address(r.FlowDestination);
            _flowSrc.Codes[i] = source.Text;
            _flowDst.Codes[i] = destination.Text;
            _flowProtocol.Values[i] = r.FlowProtocol;
            bool ports = r.FlowProtocol is PacketDissector.ProtocolTcp or PacketDissector.ProtocolUdp && (r.FlowSourcePort | r.FlowDestinationPort) != 0;
            _flowSrcPort.Values[i] = ports ? r.FlowSourcePort : null;
            _flowDstPort.Values[i] = ports ? r.FlowDestinationPort : null;
            _flowPayloadLen.Values[i] = r.FlowPayloadBytes;
            _srcType.Codes[i] = source.Type;
            _srcIid.Codes[i] = source.Iid;
            _dstType.Codes[i] = destination.Type;
            _dstIid.Codes[i] = destination.Iid;
        }
        else
        {
            _flowSrc.Codes[i] = _flowDst.Codes[i] = _srcType.Codes[i] = _srcIid.Codes[i] = _dstType.Codes[i] = _dstIid.Codes[i] = -1;
            _flowProtocol.Values[i] = null;
            _flowSrcPort.Values[i] = _flowDstPort.Values[i] = null;
            _flowPayloadLen.Values[i] = null;
        }

        _tcpFlags.Values[i] = (p & FieldPresence.TcpFlags) != 0 ? r.TcpFlags : null;
        _icmpType.Values[i] = (p & FieldPresence.Icmpv6Type) != 0 ? r.Icmpv6Type : null;
        _icmpCode.Values[i] = (p & FieldPresence.Icmpv6Code) != 0 ? r.Icmpv6Code : null;
        _ndTarget.Codes[i] = (p & FieldPresence.NdTarget) != 0 ? Address(r.NdTarget).Text : -1;
        if (r.AdvertisedPrefixCount > 0)
        {
            int count = Math.Min((int)r.AdvertisedPrefixCount, PrefixList.Capacity);
            for (int k = 0; k < count; k++)
                _raPrefixes.Append(PrefixCode(r.PrefixAt(k), r.PrefixLengthAt(k)));
            _raPrefixes.Counts[i] = count;
        }
        else
        {
            _raPrefixes.Counts[i] = -1;
        }

        if ((p & FieldPresence.Dns) != 0)
            AddDns(i, r);
        else
            NoDns(i);

        var anomalies = r.Anomalies;
        _anomalyNames.Codes[i] = anomalies != Anomaly.None ? AnomalyCode(anomalies) : -1;
        _malformed.Values[i] = (anomalies & AnomalyClasses.Malformed) != 0;
        _truncated.Values[i] = (anomalies & AnomalyClasses.Truncated) != 0;
        _frameHash.Values[i] = unchecked((long)XxHash64.HashToUInt64(captured));
    }

    /// <summary>Writes the buffered rows as one row group.</summary>
    public void FlushRowGroup()
    {
        if (_rows == 0)
            return;
        var writer = _writer ?? throw new ObjectDisposedException(nameof(PacketParquetWriter));
        writer.BeginRowGroup(_rows);
        foreach (var column in _columns)
        {
            _chunk.Reset();
            column.Encode(_rows, _chunk);
            writer.WriteChunk(_chunk);
        }
        writer.EndRowGroup();
        ResetRowGroup();
    }

    private void ResetRowGroup()
    {
        _rows = 0;
        foreach (var list in _lists)
            list.Reset();
        _strings.Clear();
        _addresses.Clear();
        _ipv4.Clear();
        _paths.Clear();
        _chains.Clear();
        _anomalies.Clear();
        _prefixes.Clear();
        _names.Clear();
        Array.Fill(_encapsulationCodes, -1);
        Array.Fill(_transportCodes, -1);
    }

    /// <summary>Writes what is buffered and the file footer. The stream is left open.</summary>
    public void Complete()
    {
        FlushRowGroup();
        var writer = _writer ?? throw new ObjectDisposedException(nameof(PacketParquetWriter));
        writer.Finish();
        writer.Dispose();
        _writer = null;
    }

    /// <summary>Ends this file (whatever was not completed is dropped) and keeps the buffers for the next one.</summary>
    public void Dispose()
    {
        if (!_open)
            return;
        _open = false;
        _anonymiser = null;
        _writer?.Dispose();
        _writer = null;
        ResetRowGroup();
        Rows = 0;
        Interlocked.Exchange(ref s_idle, this);
    }

    private void Add(params Column[] columns)
    {
        foreach (var c in columns)
        {
            _columns.Add(c);
            if (c is StringListColumn list)
                _lists.Add(list);
        }
    }

    private void SetMetadata(PacketFileMetadata m)
    {
        _captureSha.Value = m.Sha256;
        _probeId.Value = m.ProbeId;
        _labels.Value = m.Labels;
        _latitude.Value = m.Latitude;
        _longitude.Value = m.Longitude;
        _country.Value = m.Country;
        _city.Value = m.City;
        _windowStartTime.Value = m.WindowStartNs / 1000;
        _windowEndTime.Value = m.WindowEndNs / 1000;
        _windowStart.Value = m.WindowStartNs;
        _windowEnd.Value = m.WindowEndNs;
        _ifDropped.Value = m.InterfaceDropped;
        _osDropped.Value = m.OsDropped;
    }

    private void AddDns(int i, in PacketRecord r)
    {
        ref readonly var d = ref r.Dns;
        _dnsTransport.Codes[i] = EnumCode(_transportCodes, (int)r.DnsTransport, r.DnsTransport, static t => ProtocolNames.DnsTransport(t));
        _dnsResponse.Values[i] = d.HeaderComplete ? d.IsResponse : null;
        if (d.HasQuestion)
        {
            _dnsQname.Codes[i] = NameCode(d.QueryNameUtf8);
            _dnsQtype.Values[i] = d.QueryType;
        }
        else
        {
            _dnsQname.Codes[i] = -1;
            _dnsQtype.Values[i] = null;
        }
        _dnsRcode.Values[i] = d.HeaderComplete && d.IsResponse ? d.Rcode : null;
        if (d.AaaaCount > 0)
        {
            int stored = d.StoredAaaaCount;
            for (int k = 0; k < stored; k++)
                _dnsAaaa.Append(Address(d.GetAaaa(k)).Text);
            _dnsAaaa.Counts[i] = stored;
        }
        else
        {
            _dnsAaaa.Counts[i] = -1;
        }
    }

    private void NoDns(int i)
    {
        _dnsTransport.Codes[i] = _dnsQname.Codes[i] = -1;
        _dnsResponse.Values[i] = null;
        _dnsQtype.Values[i] = null;
        _dnsRcode.Values[i] = null;
        _dnsAaaa.Counts[i] = -1;
    }

    private AddressTable.Codes Address(Ipv6Address address)
    {
        ref var slot = ref _addresses.Find(address, out bool exists);
        if (!exists)
        {
            var info = Ipv6AddressClassifier.Classify(address);
            var shown = _anonymiser is null ? address : _anonymiser.Anonymise(address);
            int text = _strings.Commit(shown.Format(_strings.Reserve(46)));
            slot = new AddressTable.Codes(
                text,
                StaticCode(Ipv6AddressClassifier.TypeName(info.Type)),
                info.IidClass == IidClass.None ? -1 : StaticCode(Ipv6AddressClassifier.IidName(info.IidClass)));
        }
        return slot;
    }

    /// <summary>The code of an enum's name, cached per row group in a small array indexed by the enum value.</summary>
    private int EnumCode<TEnum>(int[] cache, int index, TEnum value, Func<TEnum, string> name)
    {
        if ((uint)index >= (uint)cache.Length)
            return StaticCode(name(value));
        ref int slot = ref cache[index];
        if (slot < 0)
            slot = StaticCode(name(value));
        return slot;
    }

    private int StaticCode(string name) => _strings.Static(name);

    private int Ipv4Code(uint address)
    {
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_ipv4, address, out bool exists);
        if (!exists)
        {
            if (_anonymiser is not null)
                address = _anonymiser.AnonymiseIpv4(address);
            var span = _strings.Reserve(15);
            int n = 0;
            for (int shift = 24; shift >= 0; shift -= 8)
            {
                ((address >> shift) & 0xFF).TryFormat(span[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
                n += written;
                if (shift > 0)
                    span[n++] = '.';
            }
            slot = _strings.Commit(n);
        }
        return slot;
    }

    private int PathCode(in PacketRecord r)
    {
        // Layers fit in 5 bits, so a whole path (at most 16 layers) is one 128-bit key.
        UInt128 key = r.PathLength;
        for (int k = 0; k < r.PathLength; k++)
            key |= (UInt128)(byte)r.LayerAt(k) << (8 + (5 * k));
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_paths, key, out bool exists);
        if (!exists)
        {
            var span = _strings.Reserve(16 * 12);
            int n = 0;
            for (int k = 0; k < r.PathLength; k++)
            {
                if (k > 0)
                    span[n++] = ':';
                var name = ProtocolNames.Layer(r.LayerAt(k));
                name.CopyTo(span[n..]);
                n += name.Length;
            }
            slot = _strings.Commit(n);
        }
        return slot;
    }

    private int ChainCode(in PacketRecord r)
    {
        UInt128 bytes = 0;
        for (int k = 0; k < r.ExtensionCount; k++)
            bytes |= (UInt128)r.ExtensionAt(k) << (8 * k);
        var key = new ChainKey(bytes, r.ExtensionCount);
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_chains, key, out bool exists);
        if (!exists)
        {
            var span = _strings.Reserve(16 * 4);
            int n = 0;
            for (int k = 0; k < r.ExtensionCount; k++)
            {
                if (k > 0)
                    span[n++] = ',';
                r.ExtensionAt(k).TryFormat(span[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
                n += written;
            }
            slot = _strings.Commit(n);
        }
        return slot;
    }

    private int AnomalyCode(Anomaly anomalies)
    {
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_anomalies, (uint)anomalies, out bool exists);
        if (!exists)
        {
            var span = _strings.Reserve(ProtocolNames.MaxAnomaliesLength);
            int n = ProtocolNames.WriteAnomalies(anomalies, span);
            slot = _strings.Commit(n);
        }
        return slot;
    }

    private int PrefixCode(Ipv6Address prefix, byte length)
    {
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_prefixes, new PrefixKey(prefix, length), out bool exists);
        if (!exists)
        {
            var span = _strings.Reserve(46 + 4);
            int n = (_anonymiser is null ? prefix : _anonymiser.AnonymisePrefix(prefix, Math.Min((int)length, 128))).Format(span);
            span[n++] = '/';
            length.TryFormat(span[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
            slot = _strings.Commit(n + written);
        }
        return slot;
    }

    private int NameCode(ReadOnlySpan<byte> utf8)
    {
        // Keyed by a 128-bit hash of the bytes; the stored text is compared too, so a collision cannot mislabel a row.
        var key = XxHash128.HashToUInt128(utf8);
        ref int slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_names, key, out bool exists);
        var span = _strings.Reserve(utf8.Length + ReverseNames.MaxGrowth);
        int n = System.Text.Encoding.UTF8.GetChars(utf8, span);
        if (_anonymiser is not null)
            n = ReverseNames.Anonymise(_anonymiser, span, n);
        if (exists && _strings[slot].Span.SequenceEqual(span[..n]))
            return slot;
        int code = _strings.Commit(n);
        if (!exists)
            slot = code;
        return code;
    }

    private static int[] NewEnumCache()
    {
        var cache = new int[16];
        Array.Fill(cache, -1);
        return cache;
    }

    private readonly record struct ChainKey(UInt128 Bytes, byte Count);

    private readonly record struct PrefixKey(Ipv6Address Prefix, byte Length);
}

/// <summary>How anomalies are grouped in the <c>malformed</c> and <c>truncated</c> columns.</summary>
public static class AnomalyClasses
{
    /// <summary>The capture ended inside a header: the snap length, or a cut record. The fields before the cut are right.</summary>
    public const Anomaly Truncated = Anomaly.TruncatedLinkHeader | Anomaly.TruncatedIpv4Header | Anomaly.TruncatedIpv6Header
        | Anomaly.TruncatedExtensionHeader | Anomaly.TruncatedTransportHeader | Anomaly.TruncatedIcmpv6 | Anomaly.TruncatedDns;

    /// <summary>The bytes were there but wrong, or broke a bound that keeps hostile input cheap.</summary>
    public const Anomaly Malformed = Anomaly.BadIpVersion | Anomaly.BadIpv4HeaderLength | Anomaly.BadExtensionHeaderLength
        | Anomaly.BadTcpHeaderLength | Anomaly.PayloadLengthMismatch | Anomaly.MalformedDns | Anomaly.MalformedTunnel
        | Anomaly.UnsupportedLinkType | Anomaly.ExtensionChainTooLong | Anomaly.EncapsulationTooDeep | Anomaly.TooManyVlanTags;
}

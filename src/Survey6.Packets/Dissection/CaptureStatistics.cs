using System.Text.Json;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

/// <summary>Counts and histograms over dissected records; fixed-size arrays so adding a record never allocates.</summary>
public sealed class CaptureStatistics
{
    private const int AnomalyBits = 32;

    private readonly long[] _firstNextHeader = new long[256];
    private readonly long[] _upperProtocol = new long[256];
    private readonly long[] _icmpv6Type = new long[256];
    private readonly long[] _encapsulation = new long[16];
    private readonly long[] _sourceType = new long[32];
    private readonly long[] _destinationType = new long[32];
    private readonly long[] _sourceIid = new long[32];
    private readonly long[] _destinationIid = new long[32];
    private readonly long[] _anomalies = new long[AnomalyBits];
    private readonly long[] _dnsTransport = new long[4];
    private readonly long[] _dnsRcode = new long[16];
    private readonly Dictionary<ushort, long> _linkTypes = [];
    private readonly List<(string File, CaptureError Error)> _errors = [];

    public long Frames { get; private set; }
    public long CustomBlocks { get; private set; }
    public long Ipv6Frames { get; private set; }
    public long BytesOnWire { get; private set; }
    public long BytesCaptured { get; private set; }
    public long TruncatedFrames { get; private set; }
    public long FramesWithAnomalies { get; private set; }
    public long FirstTimestamp { get; private set; } = long.MaxValue;
    public long LastTimestamp { get; private set; } = long.MinValue;
    public long DnsMessages { get; private set; }
    public long DnsQueries { get; private set; }
    public long DnsResponses { get; private set; }
    public long DnsMessagesWithAaaa { get; private set; }
    public long DnsAaaaRecords { get; private set; }
    public long Files { get; private set; }

    public IReadOnlyList<(string File, CaptureError Error)> Errors => _errors;

    public void AddFile() => Files++;

    public void AddError(string file, CaptureError error) => _errors.Add((file, error));

    public void Add(in PacketRecord r)
    {
        Frames++;
        if (r.Kind != FrameKind.Packet)
        {
            CustomBlocks++;
            return;
        }

        BytesOnWire += r.FrameLength;
        BytesCaptured += r.CapturedLength;
        if (r.CapturedLength < r.FrameLength)
        {
            TruncatedFrames++;
        }

        if (r.HasTimestamp)
        {
            FirstTimestamp = Math.Min(FirstTimestamp, r.TimestampNanoseconds);
            LastTimestamp = Math.Max(LastTimestamp, r.TimestampNanoseconds);
        }

        CollectionsMarshalIncrement(_linkTypes, (ushort)r.LinkType);

        if (r.Anomalies != Anomaly.None)
        {
            FramesWithAnomalies++;
            uint bits = (uint)r.Anomalies;
            while (bits != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(bits);
                _anomalies[bit]++;
                bits &= bits - 1;
            }
        }

        if (r.HasIpv6)
        {
            Ipv6Frames++;
            _encapsulation[(int)r.Encapsulation]++;
            if ((r.Present & FieldPresence.Ipv6NextHeader) != 0)
            {
                _firstNextHeader[r.Ipv6NextHeader]++;
            }

            if ((r.Present & FieldPresence.Flow) != 0)
            {
                _upperProtocol[r.FlowProtocol]++;
                var source = Ipv6AddressClassifier.Classify(r.FlowSource);
                var destination = Ipv6AddressClassifier.Classify(r.FlowDestination);
                _sourceType[(int)source.Type]++;
                _destinationType[(int)destination.Type]++;
                _sourceIid[(int)source.IidClass]++;
                _destinationIid[(int)destination.IidClass]++;
            }

            if ((r.Present & FieldPresence.Icmpv6Type) != 0)
            {
                _icmpv6Type[r.Icmpv6Type]++;
            }
        }

        if ((r.Present & FieldPresence.Dns) != 0 && r.Dns.HeaderComplete)
        {
            DnsMessages++;
            _dnsTransport[(int)r.DnsTransport]++;
            if (r.Dns.IsResponse)
            {
                DnsResponses++;
                _dnsRcode[r.Dns.Rcode & 0xF]++;
            }
            else
            {
                DnsQueries++;
            }

            if (r.Dns.AaaaCount > 0)
            {
                DnsMessagesWithAaaa++;
                DnsAaaaRecords += r.Dns.AaaaCount;
            }
        }
    }

    private static void CollectionsMarshalIncrement(Dictionary<ushort, long> map, ushort key)
    {
        ref long slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(map, key, out _);
        slot++;
    }

    /// <summary>Writes the statistics as one JSON object (the output of <c>survey6 pcap stats</c>).</summary>
    public void WriteJson(Utf8JsonWriter w, IReadOnlyList<string> files)
    {
        w.WriteStartObject();
        w.WriteStartArray("files");
        foreach (var f in files)
        {
            w.WriteStringValue(f);
        }

        w.WriteEndArray();
        w.WriteNumber("frames", Frames);
        w.WriteNumber("packet_frames", Frames - CustomBlocks);
        w.WriteNumber("custom_block_frames", CustomBlocks);
        w.WriteNumber("ipv6_frames", Ipv6Frames);
        w.WriteNumber("frames_without_ipv6", Frames - CustomBlocks - Ipv6Frames);
        w.WriteNumber("bytes_on_wire", BytesOnWire);
        w.WriteNumber("bytes_captured", BytesCaptured);
        if (FirstTimestamp <= LastTimestamp)
        {
            WriteTimestamp(w, "first_timestamp", FirstTimestamp);
            WriteTimestamp(w, "last_timestamp", LastTimestamp);
        }
        else
        {
            w.WriteNull("first_timestamp");
            w.WriteNull("last_timestamp");
        }

        w.WriteStartObject("link_types");
        foreach (var (type, count) in _linkTypes.OrderBy(kv => kv.Key))
        {
            w.WriteNumber(LinkTypeName(type), count);
        }

        w.WriteEndObject();
        WriteHistogram(w, "first_next_header", _firstNextHeader, i => ProtocolNames.NextHeader((byte)i));
        WriteHistogram(w, "upper_layer_protocol", _upperProtocol, i => ProtocolNames.NextHeader((byte)i));
        WriteHistogram(w, "icmpv6_type", _icmpv6Type, i => ProtocolNames.Icmpv6Type((byte)i));
        WriteHistogram(w, "encapsulation", _encapsulation, i => ProtocolNames.Encapsulation((Encapsulation)i));
        WriteHistogram(w, "source_address_type", _sourceType, i => Ipv6AddressClassifier.TypeName((Ipv6AddressType)i));
        WriteHistogram(w, "destination_address_type", _destinationType, i => Ipv6AddressClassifier.TypeName((Ipv6AddressType)i));
        WriteHistogram(w, "source_iid_class", _sourceIid, i => Ipv6AddressClassifier.IidName((IidClass)i));
        WriteHistogram(w, "destination_iid_class", _destinationIid, i => Ipv6AddressClassifier.IidName((IidClass)i));

        w.WriteStartObject("dns");
        w.WriteNumber("messages", DnsMessages);
        w.WriteNumber("queries", DnsQueries);
        w.WriteNumber("responses", DnsResponses);
        w.WriteNumber("messages_with_aaaa", DnsMessagesWithAaaa);
        w.WriteNumber("aaaa_records", DnsAaaaRecords);
        WriteHistogram(w, "transport", _dnsTransport, i => ProtocolNames.DnsTransport((DnsTransportKind)i));
        WriteHistogram(w, "rcode", _dnsRcode, i => i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();

        w.WriteNumber("truncated_frames", TruncatedFrames);
        w.WriteNumber("frames_with_anomalies", FramesWithAnomalies);
        WriteHistogram(w, "anomalies", _anomalies, i => ProtocolNames.Anomaly((Anomaly)(1u << i)));
        w.WriteStartArray("errors");
        foreach (var (file, error) in _errors)
        {
            w.WriteStartObject();
            w.WriteString("file", file);
            w.WriteNumber("offset", error.Offset);
            w.WriteString("message", error.Message);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteTimestamp(Utf8JsonWriter w, string name, long nanoseconds)
    {
        w.WriteStartObject(name);
        w.WriteNumber("epoch_ns", nanoseconds);
        w.WriteString("utc", DateTimeOffset.UnixEpoch.AddTicks(nanoseconds / 100).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteEndObject();
    }

    private static void WriteHistogram(Utf8JsonWriter w, string name, long[] counts, Func<int, string> label)
    {
        w.WriteStartObject(name);
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] != 0)
            {
                w.WriteNumber(label(i), counts[i]);
            }
        }

        w.WriteEndObject();
    }

    private static string LinkTypeName(ushort type) => Enum.IsDefined((LinkType)type)
        ? $"{ProtocolNames.LinkType((LinkType)type)}({type})"
        : $"linktype-{type}";
}

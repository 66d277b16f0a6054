using System.Runtime.CompilerServices;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

/// <summary>Which record fields were fully captured and dissected (tshark prints a field only when it was).</summary>
[Flags]
public enum FieldPresence : uint
{
    None = 0,
    Ipv6Header = 1 << 0,        // an IPv6 header started (tshark counts the frame as IPv6)
    Ipv6TrafficClass = 1 << 1,
    Ipv6FlowLabel = 1 << 2,
    Ipv6PayloadLength = 1 << 3,
    Ipv6NextHeader = 1 << 4,
    Ipv6HopLimit = 1 << 5,
    Ipv6Source = 1 << 6,
    Ipv6Destination = 1 << 7,
    TcpSourcePort = 1 << 8,
    TcpDestinationPort = 1 << 9,
    TcpFlags = 1 << 10,
    UdpSourcePort = 1 << 11,
    UdpDestinationPort = 1 << 12,
    Icmpv6Type = 1 << 13,
    Icmpv6Code = 1 << 14,
    Dns = 1 << 15,
    Ipv4Header = 1 << 16,
    Fragment = 1 << 17,
    Routing = 1 << 18,
    MobilityType = 1 << 19,
    AhSpi = 1 << 20,
    EspSpi = 1 << 21,
    NdTarget = 1 << 22,
    RouterAdvertisement = 1 << 23,
    Flow = 1 << 24,             // a non-quoted IPv6 header with its upper layer: the flow fields are meaningful
    FlowTcp = 1 << 25,          // the flow packet's TCP header through the window field: FlowTcp* and FlowDataLength
    FlowUdp = 1 << 26,          // the flow packet's whole UDP header: FlowDataLength
    FlowIcmpv6 = 1 << 27,       // the flow packet's ICMPv6 type and code: FlowIcmpv6*, and FlowDataLength
    FlowDns = 1 << 28,          // the flow packet's own transport carried a DNS message whose header was read
    FlowQuote = 1 << 29,        // the flow packet is an ICMPv6 error and the packet it quotes was dissected
}

/// <summary>Why dissection stopped early or what was odd about the frame. Several may be set.</summary>
[Flags]
public enum Anomaly : uint
{
    None = 0,
    TruncatedLinkHeader = 1 << 0,
    TruncatedIpv4Header = 1 << 1,
    TruncatedIpv6Header = 1 << 2,
    TruncatedExtensionHeader = 1 << 3,
    TruncatedTransportHeader = 1 << 4,
    TruncatedIcmpv6 = 1 << 5,
    TruncatedDns = 1 << 6,
    BadIpVersion = 1 << 7,
    BadIpv4HeaderLength = 1 << 8,
    BadExtensionHeaderLength = 1 << 9,
    ExtensionChainTooLong = 1 << 10,
    EncapsulationTooDeep = 1 << 11,
    PayloadLengthMismatch = 1 << 12,
    MalformedDns = 1 << 13,
    MalformedTunnel = 1 << 14,
    UnsupportedLinkType = 1 << 15,
    TooManyVlanTags = 1 << 16,
    DeprecatedRoutingHeader = 1 << 17,
    BadTcpHeaderLength = 1 << 18,
}

/// <summary>One layer of a frame's encapsulation path, outermost first.</summary>
public enum Layer : byte
{
    None = 0,
    Ethernet,
    Vlan,
    LinuxSll,
    LinuxSll2,
    Loopback,
    Ppp,
    Pppoe,
    RawIp,
    Ipv4,
    Ipv6,
    Gre,
    Erspan,
    Teredo,
    L2tp,
    Udp,
    Tcp,
    Icmpv6,
    Dns,
    QuotedIpv6,
}

/// <summary>Summary of how the first IPv6 packet of the frame travelled.</summary>
public enum Encapsulation : byte
{
    None = 0,         // no IPv6
    Native,           // IPv6 directly on the link
    SixInFour,        // IPv4 protocol 41
    Teredo,           // IPv4/UDP: port 3544, or any port with DissectorOptions.TeredoOnAnyPort
    Ipv6InIpv6,       // IPv6 next header 41 (outer IPv6 carries inner IPv6)
    Gre,              // inside GRE (PPTP, ERSPAN, plain)
    L2tp,             // inside L2TPv2 over UDP
    Other,
}

[InlineArray(Capacity)]
public struct LayerPath
{
    public const int Capacity = 16;
    private Layer _element0;
}

[InlineArray(Capacity)]
public struct ExtensionChain
{
    public const int Capacity = 16;
    private byte _element0;
}

[InlineArray(Capacity)]
public struct PrefixList
{
    public const int Capacity = 4;
    private Ipv6Address _element0;
}

[InlineArray(PrefixList.Capacity)]
public struct PrefixLengthList
{
    private byte _element0;
}

/// <summary>
/// Everything survey6 learns about one frame. A single instance is reused for every frame of a file,
/// so it holds no references and its arrays are inline. The <c>Ipv6*</c>, <c>Tcp*</c>, <c>Udp*</c>,
/// <c>Icmpv6*</c> and <see cref="Dns"/> fields follow tshark's first-occurrence rule (outermost header);
/// the <c>Flow*</c> fields describe the innermost, non-quoted IPv6 packet, which is what flows are built from.
/// </summary>
public struct PacketRecord
{
    public long FrameNumber;
    public long TimestampNanoseconds;
    public bool HasTimestamp;
    public uint FrameLength;
    public uint CapturedLength;
    public LinkType LinkType;
    public FrameKind Kind;
    public int InterfaceId;

    /// <summary>The options the frame is dissected with (set by <c>PacketDissector.Dissect</c>), so every layer can see them.</summary>
    internal DissectorOptions Options;

    public FieldPresence Present;
    public Anomaly Anomalies;

    public LayerPath Path;
    public byte PathLength;
    public Encapsulation Encapsulation;
    public byte Ipv6HeaderCount;
    public byte VlanCount;
    public ushort VlanId;

    // First IPv4 header (only the parts survey6 reports).
    public uint Ipv4Source;
    public uint Ipv4Destination;
    public byte Ipv4Protocol;

    // First (outermost) IPv6 header.
    public byte Ipv6Version;
    public byte Ipv6TrafficClass;
    public uint Ipv6FlowLabel;
    public ushort Ipv6PayloadLength;
    public byte Ipv6NextHeader;
    public byte Ipv6HopLimit;
    public Ipv6Address Ipv6Source;
    public Ipv6Address Ipv6Destination;

    // Extension headers of the first IPv6 header, in order (the values are next-header numbers).
    public ExtensionChain Extensions;
    public byte ExtensionCount;
    public byte RoutingType;
    public byte SegmentsLeft;
    public ushort FragmentOffset;   // in 8-octet units, as on the wire
    public bool FragmentMore;
    public uint FragmentId;
    public byte MobilityType;
    public uint AhSpi;
    public uint EspSpi;

    // First transport headers in dissection order (for ICMPv6 errors: from the quoted packet).
    public ushort TcpSourcePort;
    public ushort TcpDestinationPort;
    public ushort TcpFlags;
    public ushort UdpSourcePort;
    public ushort UdpDestinationPort;
    public byte Icmpv6Type;
    public byte Icmpv6Code;

    // ICMPv6 details.
    public Ipv6Address NdTarget;
    public byte RouterAdvertisementFlags;
    public ushort RouterLifetime;
    public PrefixList AdvertisedPrefixes;
    public PrefixLengthList AdvertisedPrefixLengths;
    public byte AdvertisedPrefixCount;

    // The innermost non-quoted IPv6 packet: what a flow is keyed on.
    public Ipv6Address FlowSource;
    public Ipv6Address FlowDestination;
    public byte FlowProtocol;          // final upper-layer protocol after the extension chain
    public ushort FlowSourcePort;
    public ushort FlowDestinationPort;
    public uint FlowPayloadBytes;      // IPv6 payload length of that packet as on the wire

    // That packet's own transport header (never one quoted inside it): what connection tracking reads.
    public ushort FlowTcpFlags;        // 12 bits, as tcp_flags
    public uint FlowTcpSequence;
    public uint FlowTcpAcknowledgement;
    public ushort FlowTcpWindow;       // as on the wire, unscaled
    public byte FlowIcmpv6Type;
    public byte FlowIcmpv6Code;

    /// <summary>
    /// Transport payload octets of the flow packet as its headers declare them (not as captured): TCP segment data
    /// (IPv6 payload length less extension and TCP headers, tshark's <c>tcp.len</c>), UDP data (UDP length less 8),
    /// ICMPv6 octets after the 8-octet header (type, code, checksum and the message's first word, as Zeek counts them).
    /// For the first fragment of a fragmented packet, that fragment's share (fragments are not reassembled).
    /// </summary>
    public uint FlowDataLength;

    /// <summary>Where the flow packet's IPv6 payload starts in the frame, to turn declared lengths into data lengths.</summary>
    internal int FlowPayloadOffset;

    // DNS message location (absolute offset in the frame) and its parsed content.
    public DnsTransportKind DnsTransport;
    public int DnsOffset;
    public int DnsLength;
    public DnsInfo Dns;

    public readonly bool Has(FieldPresence field) => (Present & field) == field;

    public readonly bool HasIpv6 => (Present & FieldPresence.Ipv6Header) != 0;

    public readonly Layer LayerAt(int index) => Path[index];

    public readonly byte ExtensionAt(int index) => Extensions[index];

    public readonly Ipv6Address PrefixAt(int index) => AdvertisedPrefixes[index];

    public readonly byte PrefixLengthAt(int index) => AdvertisedPrefixLengths[index];

    /// <summary>Clears the record for the next frame without touching the DNS buffers' contents (only their lengths).</summary>
    public void Reset()
    {
        // Dns is the last field and holds the large inline buffers: zero everything before it, then reset it cheaply.
        ref byte start = ref Unsafe.As<PacketRecord, byte>(ref this);
        var prefix = (uint)Unsafe.ByteOffset(ref start, ref Unsafe.As<DnsInfo, byte>(ref Dns));
        Unsafe.InitBlockUnaligned(ref start, 0, prefix);
        Dns.Reset();
    }

    internal void Push(Layer layer)
    {
        if (PathLength < LayerPath.Capacity)
        {
            Path[PathLength++] = layer;
        }
    }
}

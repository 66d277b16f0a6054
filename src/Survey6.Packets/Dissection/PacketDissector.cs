using System.Buffers.Binary;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

/// <summary>
/// Dissects one frame into a reused <see cref="PacketRecord"/>. Never throws on bad data and never allocates:
/// every read is preceded by a length check, and whatever was fully captured before a problem is kept.
/// </summary>
/// <remarks>
/// Offsets are absolute positions in the frame; <c>end</c> is where the current protocol's bytes stop
/// (the captured length, or less when a length field says so, e.g. IPv6 payload length vs Ethernet padding).
/// </remarks>
public static class PacketDissector
{
    /// <summary>Nested IP headers (tunnels, ICMPv6 quotes) followed before giving up.</summary>
    public const int MaxEncapsulationDepth = 6;

    /// <summary>Extension headers followed per IPv6 header before giving up.</summary>
    public const int MaxExtensionHeaders = 16;

    /// <summary>Stacked 802.1Q/802.1ad tags accepted.</summary>
    public const int MaxVlanTags = 8;

    // Next-header / protocol numbers.
    public const byte HopByHop = 0;
    public const byte ProtocolIcmp = 1;
    public const byte ProtocolIpv4 = 4;
    public const byte ProtocolTcp = 6;
    public const byte ProtocolUdp = 17;
    public const byte ProtocolIpv6 = 41;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte ProtocolGre = 47;
    public const byte Esp = 50;
    public const byte Ah = 51;
    public const byte ProtocolIcmpv6 = 58;
    public const byte NoNextHeader = 59;
    public const byte DestinationOptions = 60;
    public const byte MobilityOld = 62;
    public const byte Mobility = 135;

    // EtherTypes.
    private const ushort EtherTypeIpv4 = 0x0800;
    private const ushort EtherTypeIpv6 = 0x86DD;
    private const ushort EtherTypeVlan = 0x8100;
    private const ushort EtherTypeQinQ = 0x88A8;
    private const ushort EtherTypeQinQOld = 0x9100;
    private const ushort EtherTypePppoeSession = 0x8864;
    private const ushort EtherTypeTransparentBridging = 0x6558;
    private const ushort EtherTypePpp = 0x880B;
    private const ushort EtherTypeErspanII = 0x88BE;
    private const ushort EtherTypeErspanIII = 0x22EB;

    // PPP protocol numbers.
    private const ushort PppIpv4 = 0x0021;
    private const ushort PppIpv6 = 0x0057;

    // Well-known ports.
    private const ushort PortDns = 53;
    private const ushort PortL2tp = 1701;
    private const ushort PortTeredo = 3544;
    private const ushort PortMdns = 5353;
    private const ushort PortLlmnr = 5355;

    // Header sizes and offsets.
    private const int EthernetHeaderLength = 14;
    private const int EthernetTypeOffset = 12;
    private const int VlanTagLength = 4;
    private const int SllHeaderLength = 16;
    private const int SllProtocolOffset = 14;
    private const int Sll2HeaderLength = 20;
    private const int Sll2ProtocolOffset = 0;
    private const int LoopbackHeaderLength = 4;
    private const int PppoeHeaderLength = 6;
    private const int Ipv4MinHeaderLength = 20;
    private const int Ipv6HeaderLength = 40;
    private const int Ipv6PayloadLengthOffset = 4;
    private const int Ipv6NextHeaderOffset = 6;
    private const int Ipv6HopLimitOffset = 7;
    private const int Ipv6SourceOffset = 8;
    private const int Ipv6DestinationOffset = 24;
    private const int UdpHeaderLength = 8;
    private const int TcpMinHeaderLength = 20;
    private const int TcpFlagsOffset = 12;
    private const int TcpWindowOffset = 14;
    private const int FragmentHeaderLength = 8;
    private const int Icmpv6HeaderLength = 8;
    private const int NdTargetOffset = 8;
    private const int RaFlagsOffset = 5;
    private const int RaLifetimeOffset = 6;
    private const int RaOptionsOffset = 16;
    private const int RsOptionsOffset = 8;
    private const int NdOptionsOffset = 24;
    private const int PrefixOptionType = 3;
    private const int PrefixOptionLength = 32;

    // Teredo (RFC 4380 5.1.1): an optional authentication header (indicator 0x0001, ID-len, AU-len, client
    // identifier, authentication value, 8-octet nonce, confirmation byte), then an optional 8-octet origin
    // indication (indicator 0x0000, obfuscated port and address), then the IPv6 packet.
    private const ushort TeredoAuthenticationIndicator = 0x0001;
    private const int TeredoIdLengthOffset = 2;
    private const int TeredoAuthLengthOffset = 3;
    private const int TeredoAuthenticationFixedLength = 13;
    private const ushort TeredoOriginIndicator = 0x0000;
    private const int TeredoOriginIndicationLength = 8;

    // The largest IPv6 payload an IPv4/UDP datagram can carry: tshark refuses a longer one as Teredo.
    private const int MaxTeredoPayloadLength = ushort.MaxValue - Ipv4MinHeaderLength - UdpHeaderLength - Ipv6HeaderLength;

    /// <summary>Dissects a frame of the given link type with <see cref="DissectorOptions.Default"/>.</summary>
    public static void Dissect(ReadOnlySpan<byte> frame, LinkType linkType, ref PacketRecord r) =>
        Dissect(frame, linkType, ref r, DissectorOptions.Default);

    /// <summary>Dissects a frame of the given link type. The caller resets the record first and fills the frame-level fields.</summary>
    public static void Dissect(ReadOnlySpan<byte> frame, LinkType linkType, ref PacketRecord r, DissectorOptions options)
    {
        r.Options = options;
        switch (linkType)
        {
            case LinkType.Ethernet:
                DissectEthernet(frame, 0, ref r, 0, Encapsulation.Native);
                break;
            case LinkType.LinuxSll:
                r.Push(Layer.LinuxSll);
                if (frame.Length < SllHeaderLength)
                {
                    r.Anomalies |= Anomaly.TruncatedLinkHeader;
                    return;
                }

                DispatchEtherType(frame, SllHeaderLength, BinaryPrimitives.ReadUInt16BigEndian(frame[SllProtocolOffset..]), ref r, 0, Encapsulation.Native);
                break;
            case LinkType.LinuxSll2:
                r.Push(Layer.LinuxSll2);
                if (frame.Length < Sll2HeaderLength)
                {
                    r.Anomalies |= Anomaly.TruncatedLinkHeader;
                    return;
                }

                DispatchEtherType(frame, Sll2HeaderLength, BinaryPrimitives.ReadUInt16BigEndian(frame[Sll2ProtocolOffset..]), ref r, 0, Encapsulation.Native);
                break;
            case LinkType.Raw:
                r.Push(Layer.RawIp);
                DissectRawIp(frame, 0, ref r, 0, Encapsulation.Native);
                break;
            case LinkType.Ipv4:
                DissectIpv4(frame, 0, frame.Length, ref r, 0, Encapsulation.Native);
                break;
            case LinkType.Ipv6:
                DissectIpv6(frame, 0, frame.Length, ref r, 0, Encapsulation.Native, quoted: false);
                break;
            case LinkType.Null:
            case LinkType.Loop:
                DissectLoopback(frame, linkType, ref r);
                break;
            case LinkType.Ppp:
                DissectPpp(frame, 0, ref r, 0, Encapsulation.Native);
                break;
            default:
                r.Anomalies |= Anomaly.UnsupportedLinkType;
                break;
        }
    }

    private static void DissectLoopback(ReadOnlySpan<byte> frame, LinkType linkType, ref PacketRecord r)
    {
        r.Push(Layer.Loopback);
        if (frame.Length < LoopbackHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        // NULL stores the address family in the capturing host's byte order, LOOP in network order.
        uint family = linkType == LinkType.Loop
            ? BinaryPrimitives.ReadUInt32BigEndian(frame)
            : BinaryPrimitives.ReadUInt32LittleEndian(frame);
        if (family > 0xFFFF)
        {
            family = BinaryPrimitives.ReverseEndianness(family);
        }

        switch (family)
        {
            case 2:
                DissectIpv4(frame, LoopbackHeaderLength, frame.Length, ref r, 0, Encapsulation.Native);
                break;
            case 24: // NetBSD, OpenBSD, BSD/OS
            case 28: // FreeBSD, DragonFly
            case 30: // macOS, iOS
                DissectIpv6(frame, LoopbackHeaderLength, frame.Length, ref r, 0, Encapsulation.Native, quoted: false);
                break;
        }
    }

    private static void DissectEthernet(ReadOnlySpan<byte> frame, int offset, ref PacketRecord r, int depth, Encapsulation via)
    {
        r.Push(Layer.Ethernet);
        if (frame.Length - offset < EthernetHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        var etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + EthernetTypeOffset)..]);
        DispatchEtherType(frame, offset + EthernetHeaderLength, etherType, ref r, depth, via);
    }

    private static void DispatchEtherType(ReadOnlySpan<byte> frame, int offset, ushort etherType, ref PacketRecord r, int depth, Encapsulation via)
    {
        for (int tags = 0; ; tags++)
        {
            switch (etherType)
            {
                case EtherTypeIpv6:
                    DissectIpv6(frame, offset, frame.Length, ref r, depth, via, quoted: false);
                    return;
                case EtherTypeIpv4:
                    DissectIpv4(frame, offset, frame.Length, ref r, depth, via);
                    return;
                case EtherTypePppoeSession:
                    r.Push(Layer.Pppoe);
                    if (frame.Length - offset < PppoeHeaderLength + 2)
                    {
                        r.Anomalies |= Anomaly.TruncatedLinkHeader;
                        return;
                    }

                    r.Push(Layer.Ppp);
                    DispatchPpp(frame, offset + PppoeHeaderLength + 2, BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + PppoeHeaderLength)..]), ref r, depth, via);
                    return;
                case EtherTypeVlan:
                case EtherTypeQinQ:
                case EtherTypeQinQOld:
                    if (tags >= MaxVlanTags)
                    {
                        r.Anomalies |= Anomaly.TooManyVlanTags;
                        return;
                    }

                    r.Push(Layer.Vlan);
                    if (frame.Length - offset < VlanTagLength)
                    {
                        r.Anomalies |= Anomaly.TruncatedLinkHeader;
                        return;
                    }

                    if (r.VlanCount++ == 0)
                    {
                        r.VlanId = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]) & 0x0FFF);
                    }

                    etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + 2)..]);
                    offset += VlanTagLength;
                    continue;
                default:
                    return;
            }
        }
    }

    private static void DissectPpp(ReadOnlySpan<byte> frame, int offset, ref PacketRecord r, int depth, Encapsulation via)
    {
        r.Push(Layer.Ppp);
        var data = frame[offset..];

        // HDLC-like framing (RFC 1662) prefixes address 0xFF and control 0x03.
        if (data.Length >= 2 && data[0] == 0xFF && data[1] == 0x03)
        {
            offset += 2;
            data = data[2..];
        }

        if (data.Length < 1)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        // Protocol-field compression (RFC 1661 6.5): an odd first byte is a one-byte protocol.
        if ((data[0] & 1) != 0)
        {
            DispatchPpp(frame, offset + 1, data[0], ref r, depth, via);
            return;
        }

        if (data.Length < 2)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        DispatchPpp(frame, offset + 2, BinaryPrimitives.ReadUInt16BigEndian(data), ref r, depth, via);
    }

    private static void DispatchPpp(ReadOnlySpan<byte> frame, int offset, ushort protocol, ref PacketRecord r, int depth, Encapsulation via)
    {
        if (protocol == PppIpv6)
        {
            DissectIpv6(frame, offset, frame.Length, ref r, depth, via, quoted: false);
        }
        else if (protocol == PppIpv4)
        {
            DissectIpv4(frame, offset, frame.Length, ref r, depth, via);
        }
    }

    private static void DissectRawIp(ReadOnlySpan<byte> frame, int offset, ref PacketRecord r, int depth, Encapsulation via)
    {
        if (frame.Length - offset < 1)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        switch (frame[offset] >> 4)
        {
            case 4:
                DissectIpv4(frame, offset, frame.Length, ref r, depth, via);
                break;
            case 6:
                DissectIpv6(frame, offset, frame.Length, ref r, depth, via, quoted: false);
                break;
            default:
                r.Anomalies |= Anomaly.BadIpVersion;
                break;
        }
    }

    private static void DissectIpv4(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, Encapsulation via, bool quoted = false)
    {
        if (depth > MaxEncapsulationDepth)
        {
            r.Anomalies |= Anomaly.EncapsulationTooDeep;
            return;
        }

        r.Push(Layer.Ipv4);
        var data = frame[offset..end];
        if (data.Length < Ipv4MinHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedIpv4Header;
            return;
        }

        if (data[0] >> 4 != 4)
        {
            r.Anomalies |= Anomaly.BadIpVersion;
            return;
        }

        int headerLength = (data[0] & 0x0F) * 4;
        if (headerLength < Ipv4MinHeaderLength)
        {
            r.Anomalies |= Anomaly.BadIpv4HeaderLength;
            return;
        }

        byte protocol = data[9];
        if ((r.Present & FieldPresence.Ipv4Header) == 0)
        {
            r.Present |= FieldPresence.Ipv4Header;
            r.Ipv4Source = BinaryPrimitives.ReadUInt32BigEndian(data[12..]);
            r.Ipv4Destination = BinaryPrimitives.ReadUInt32BigEndian(data[16..]);
            r.Ipv4Protocol = protocol;
        }

        if (data.Length < headerLength)
        {
            r.Anomalies |= Anomaly.TruncatedIpv4Header;
            return;
        }

        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
        if (totalLength >= headerLength && totalLength < data.Length)
        {
            end = offset + totalLength;
        }

        // Without reassembly only the first fragment carries the upper-layer header.
        int fragmentOffset = BinaryPrimitives.ReadUInt16BigEndian(data[6..]) & 0x1FFF;
        if (fragmentOffset != 0)
        {
            return;
        }

        var innerVia = via == Encapsulation.Native ? Encapsulation.SixInFour : via;
        DissectUpperLayer(frame, offset + headerLength, end, protocol, ref r, depth, innerVia, flowOwner: false, quoted, carrierIsIpv6: false);
    }

    private static void DissectIpv6(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, Encapsulation via, bool quoted)
    {
        if (depth > MaxEncapsulationDepth)
        {
            r.Anomalies |= Anomaly.EncapsulationTooDeep;
            return;
        }

        r.Push(quoted ? Layer.QuotedIpv6 : Layer.Ipv6);
        var data = frame[offset..end];
        bool first = (r.Present & FieldPresence.Ipv6Header) == 0;
        if (first)
        {
            r.Present |= FieldPresence.Ipv6Header;
            r.Encapsulation = via;
        }
        else if (!quoted && via == Encapsulation.Ipv6InIpv6 && r.Encapsulation == Encapsulation.Native)
        {
            r.Encapsulation = Encapsulation.Ipv6InIpv6;
        }

        if (r.Ipv6HeaderCount < byte.MaxValue)
        {
            r.Ipv6HeaderCount++;
        }

        if (data.Length < Ipv6HeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedIpv6Header;
        }

        if (data.Length < 1)
        {
            return;
        }

        byte version = (byte)(data[0] >> 4);
        if (first)
        {
            r.Ipv6Version = version;
        }

        if (version != 6)
        {
            r.Anomalies |= Anomaly.BadIpVersion;
            return;
        }

        if (first)
        {
            // tshark reports each field whose bytes were captured, even when the header is cut short.
            // tshark reads version, traffic class and flow label as one 32-bit word.
            if (data.Length >= 4)
            {
                r.Ipv6TrafficClass = (byte)((BinaryPrimitives.ReadUInt16BigEndian(data) >> 4) & 0xFF);
                r.Ipv6FlowLabel = BinaryPrimitives.ReadUInt32BigEndian(data) & 0x000F_FFFF;
                r.Present |= FieldPresence.Ipv6TrafficClass | FieldPresence.Ipv6FlowLabel;
            }

            if (data.Length >= Ipv6PayloadLengthOffset + 2)
            {
                r.Ipv6PayloadLength = BinaryPrimitives.ReadUInt16BigEndian(data[Ipv6PayloadLengthOffset..]);
                r.Present |= FieldPresence.Ipv6PayloadLength;
            }

            if (data.Length > Ipv6NextHeaderOffset)
            {
                r.Ipv6NextHeader = data[Ipv6NextHeaderOffset];
                r.Present |= FieldPresence.Ipv6NextHeader;
            }

            if (data.Length > Ipv6HopLimitOffset)
            {
                r.Ipv6HopLimit = data[Ipv6HopLimitOffset];
                r.Present |= FieldPresence.Ipv6HopLimit;
            }

            if (data.Length >= Ipv6SourceOffset + Ipv6Address.Length)
            {
                r.Ipv6Source = Ipv6Address.Read(data[Ipv6SourceOffset..]);
                r.Present |= FieldPresence.Ipv6Source;
            }

            if (data.Length >= Ipv6DestinationOffset + Ipv6Address.Length)
            {
                r.Ipv6Destination = Ipv6Address.Read(data[Ipv6DestinationOffset..]);
                r.Present |= FieldPresence.Ipv6Destination;
            }
        }

        if (data.Length < Ipv6HeaderLength)
        {
            return;
        }

        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(data[Ipv6PayloadLengthOffset..]);
        byte nextHeader = data[Ipv6NextHeaderOffset];

        // Payload length 0 with a Hop-by-Hop header may be a jumbogram (RFC 2675): then the frame bounds the packet.
        if (payloadLength != 0 || nextHeader != HopByHop)
        {
            int declaredEnd = offset + Ipv6HeaderLength + payloadLength;
            if (declaredEnd <= end)
            {
                end = declaredEnd;
            }
            else if (r.CapturedLength == r.FrameLength)
            {
                r.Anomalies |= Anomaly.PayloadLengthMismatch;
            }
        }

        bool flowOwner = !quoted;
        if (flowOwner)
        {
            r.Present |= FieldPresence.Flow;
            r.FlowSource = Ipv6Address.Read(data[Ipv6SourceOffset..]);
            r.FlowDestination = Ipv6Address.Read(data[Ipv6DestinationOffset..]);
            r.FlowSourcePort = 0;
            r.FlowDestinationPort = 0;
            r.FlowPayloadBytes = (uint)payloadLength;
        }

        int position = offset + Ipv6HeaderLength;
        bool recordChain = first;
        for (int count = 0; ; count++)
        {
            if (count >= MaxExtensionHeaders)
            {
                r.Anomalies |= Anomaly.ExtensionChainTooLong;
                return;
            }

            var rest = frame[position..end];
            switch (nextHeader)
            {
                case HopByHop:
                case DestinationOptions:
                case Routing:
                case Mobility:
                case MobilityOld:
                {
                    Record(ref r, recordChain, nextHeader);
                    if (nextHeader == Routing && rest.Length >= 4 && (r.Present & FieldPresence.Routing) == 0)
                    {
                        r.Present |= FieldPresence.Routing;
                        r.RoutingType = rest[2];
                        r.SegmentsLeft = rest[3];
                        if (rest[2] == 0)
                        {
                            r.Anomalies |= Anomaly.DeprecatedRoutingHeader;
                        }
                    }

                    bool isMobility = nextHeader is Mobility or MobilityOld;
                    if (isMobility && rest.Length >= 3 && (r.Present & FieldPresence.MobilityType) == 0)
                    {
                        r.Present |= FieldPresence.MobilityType;
                        r.MobilityType = rest[2];
                    }

                    if (rest.Length < 2)
                    {
                        StopTruncated(ref r, flowOwner, nextHeader);
                        return;
                    }

                    int length = (rest[1] + 1) * 8;
                    if (isMobility)
                    {
                        // The Mobility header ends the chain: its payload proto is reserved to be No Next Header.
                        SetFlowProtocol(ref r, flowOwner, nextHeader);
                        if (rest.Length < length)
                        {
                            r.Anomalies |= Anomaly.TruncatedExtensionHeader;
                        }

                        return;
                    }

                    if (rest.Length < length)
                    {
                        StopTruncated(ref r, flowOwner, nextHeader);
                        return;
                    }

                    nextHeader = rest[0];
                    position += length;
                    continue;
                }

                case Fragment:
                {
                    Record(ref r, recordChain, nextHeader);
                    if (rest.Length < FragmentHeaderLength)
                    {
                        StopTruncated(ref r, flowOwner, nextHeader);
                        return;
                    }

                    ushort offsetAndFlags = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
                    if ((r.Present & FieldPresence.Fragment) == 0)
                    {
                        r.Present |= FieldPresence.Fragment;
                        r.FragmentOffset = (ushort)(offsetAndFlags >> 3);
                        r.FragmentMore = (offsetAndFlags & 1) != 0;
                        r.FragmentId = BinaryPrimitives.ReadUInt32BigEndian(rest[4..]);
                    }

                    nextHeader = rest[0];
                    position += FragmentHeaderLength;
                    if (offsetAndFlags >> 3 != 0)
                    {
                        // A later fragment: its bytes continue an upper-layer header we cannot see.
                        SetFlowProtocol(ref r, flowOwner, nextHeader);
                        return;
                    }

                    continue;
                }

                case Ah:
                {
                    Record(ref r, recordChain, nextHeader);
                    if (rest.Length >= 8 && (r.Present & FieldPresence.AhSpi) == 0)
                    {
                        r.Present |= FieldPresence.AhSpi;
                        r.AhSpi = BinaryPrimitives.ReadUInt32BigEndian(rest[4..]);
                    }

                    if (rest.Length < 2)
                    {
                        StopTruncated(ref r, flowOwner, nextHeader);
                        return;
                    }

                    int length = (rest[1] + 2) * 4;
                    if (rest.Length < length)
                    {
                        StopTruncated(ref r, flowOwner, nextHeader);
                        return;
                    }

                    nextHeader = rest[0];
                    position += length;
                    continue;
                }

                case Esp:
                    Record(ref r, recordChain, nextHeader);
                    if (rest.Length >= 4 && (r.Present & FieldPresence.EspSpi) == 0)
                    {
                        r.Present |= FieldPresence.EspSpi;
                        r.EspSpi = BinaryPrimitives.ReadUInt32BigEndian(rest);
                    }

                    // Everything after the SPI is encrypted.
                    SetFlowProtocol(ref r, flowOwner, nextHeader);
                    return;

                case NoNextHeader:
                    SetFlowProtocol(ref r, flowOwner, nextHeader);
                    return;

                default:
                    SetFlowProtocol(ref r, flowOwner, nextHeader);
                    DissectUpperLayer(frame, position, end, nextHeader, ref r, depth, Encapsulation.Ipv6InIpv6, flowOwner, quoted, carrierIsIpv6: true);
                    return;
            }
        }
    }

    private static void Record(ref PacketRecord r, bool recordChain, byte header)
    {
        if (recordChain && r.ExtensionCount < ExtensionChain.Capacity)
        {
            r.Extensions[r.ExtensionCount++] = header;
        }
    }

    /// <summary>The capture ended inside an extension header: flag it, and the flow's protocol is the header we stopped at.</summary>
    private static void StopTruncated(ref PacketRecord r, bool flowOwner, byte header)
    {
        r.Anomalies |= Anomaly.TruncatedExtensionHeader;
        SetFlowProtocol(ref r, flowOwner, header);
    }

    private static void SetFlowProtocol(ref PacketRecord r, bool flowOwner, byte protocol)
    {
        if (flowOwner)
        {
            r.FlowProtocol = protocol;
        }
    }

    private static void DissectUpperLayer(ReadOnlySpan<byte> frame, int offset, int end, byte protocol, ref PacketRecord r, int depth, Encapsulation tunnelVia, bool flowOwner, bool quoted, bool carrierIsIpv6)
    {
        switch (protocol)
        {
            case ProtocolIcmp:
                DissectIcmpv4(frame, offset, end, ref r, depth, quoted);
                break;
            case ProtocolTcp:
                DissectTcp(frame, offset, end, ref r, flowOwner);
                break;
            case ProtocolUdp:
                DissectUdp(frame, offset, end, ref r, depth, flowOwner, quoted);
                break;
            case ProtocolIcmpv6:
                DissectIcmpv6(frame, offset, end, ref r, depth, quoted);
                break;
            case ProtocolIpv6:
                DissectIpv6(frame, offset, end, ref r, depth + 1, carrierIsIpv6 ? Encapsulation.Ipv6InIpv6 : tunnelVia, quoted);
                break;
            case ProtocolIpv4:
                DissectIpv4(frame, offset, end, ref r, depth + 1, carrierIsIpv6 ? Encapsulation.Other : tunnelVia, quoted);
                break;
            case ProtocolGre:
                DissectGre(frame, offset, end, ref r, depth + 1);
                break;
        }
    }

    private static void DissectTcp(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, bool flowOwner)
    {
        r.Push(Layer.Tcp);
        var data = frame[offset..end];
        bool first = (r.Present & FieldPresence.TcpSourcePort) == 0;
        if (data.Length < TcpMinHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedTransportHeader;
        }

        if (!TryReadPorts(data, ref r, first, flowOwner, FieldPresence.TcpSourcePort | FieldPresence.TcpDestinationPort, ref r.TcpSourcePort, ref r.TcpDestinationPort, out ushort sourcePort, out ushort destinationPort))
        {
            return;
        }

        // tshark reads up to the window field before it shows the flags.
        if (data.Length < TcpWindowOffset + 2)
        {
            return;
        }

        int headerLength = (data[TcpFlagsOffset] >> 4) * 4;
        if (headerLength < TcpMinHeaderLength)
        {
            r.Anomalies |= Anomaly.BadTcpHeaderLength;
            return;
        }

        if (first)
        {
            r.TcpFlags = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(data[TcpFlagsOffset..]) & 0x0FFF);
            r.Present |= FieldPresence.TcpFlags;
        }

        if (data.Length <= headerLength)
        {
            if (data.Length < headerLength)
            {
                r.Anomalies |= Anomaly.TruncatedTransportHeader;
            }

            return;
        }

        var kind = DnsReader.Classify(sourcePort, destinationPort);
        if (kind != DnsTransportKind.None && (r.Present & FieldPresence.Dns) == 0)
        {
            // DNS over TCP: a two-byte length, then the message (no reassembly across segments).
            int messageOffset = offset + headerLength + 2;
            if (messageOffset > end)
            {
                return;
            }

            int declared = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + headerLength)..]);
            int messageEnd = Math.Min(end, messageOffset + declared);
            ReadDns(frame, messageOffset, messageEnd, kind, ref r);
        }
    }

    /// <summary>
    /// Reads a TCP or UDP port pair. tshark reads both ports before it shows either, so a header cut
    /// inside the pair reports neither.
    /// </summary>
    private static bool TryReadPorts(ReadOnlySpan<byte> data, ref PacketRecord r, bool first, bool flowOwner, FieldPresence fields, ref ushort firstSource, ref ushort firstDestination, out ushort sourcePort, out ushort destinationPort)
    {
        if (data.Length < 4)
        {
            sourcePort = destinationPort = 0;
            return false;
        }

        sourcePort = BinaryPrimitives.ReadUInt16BigEndian(data);
        destinationPort = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
        if (first)
        {
            firstSource = sourcePort;
            firstDestination = destinationPort;
            r.Present |= fields;
        }

        if (flowOwner)
        {
            r.FlowSourcePort = sourcePort;
            r.FlowDestinationPort = destinationPort;
        }

        return true;
    }

    private static void DissectUdp(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, bool flowOwner, bool quoted)
    {
        r.Push(Layer.Udp);
        var data = frame[offset..end];
        bool first = (r.Present & FieldPresence.UdpSourcePort) == 0;
        if (data.Length < UdpHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedTransportHeader;
        }

        if (!TryReadPorts(data, ref r, first, flowOwner, FieldPresence.UdpSourcePort | FieldPresence.UdpDestinationPort, ref r.UdpSourcePort, ref r.UdpDestinationPort, out ushort sourcePort, out ushort destinationPort))
        {
            return;
        }

        if (data.Length < UdpHeaderLength)
        {
            return;
        }

        int udpLength = BinaryPrimitives.ReadUInt16BigEndian(data[4..]);
        int payloadEnd = udpLength >= UdpHeaderLength && offset + udpLength < end ? offset + udpLength : end;
        int payload = offset + UdpHeaderLength;

        // Like tshark, try the lower port's protocol first, then the higher one's, then the heuristics.
        ushort low = Math.Min(sourcePort, destinationPort);
        ushort high = Math.Max(sourcePort, destinationPort);
        if (TryUdpPort(frame, payload, payloadEnd, low, sourcePort, destinationPort, ref r, depth, quoted))
        {
            return;
        }

        if (high != low && TryUdpPort(frame, payload, payloadEnd, high, sourcePort, destinationPort, ref r, depth, quoted))
        {
            return;
        }

        if (!quoted && (r.Options & DissectorOptions.TeredoOnAnyPort) != 0)
        {
            // tshark gives the heuristic the datagram's length as sent; when the snap length cut the frame,
            // only the UDP length field still says what that was.
            bool cut = r.CapturedLength < r.FrameLength;
            int sentPayloadLength = cut && udpLength >= UdpHeaderLength ? udpLength - UdpHeaderLength : payloadEnd - payload;
            if (IsTeredo(frame[payload..payloadEnd], sentPayloadLength))
            {
                DissectTeredo(frame, payload, payloadEnd, ref r, depth);
            }
        }
    }

    private static bool TryUdpPort(ReadOnlySpan<byte> frame, int payload, int end, ushort port, ushort sourcePort, ushort destinationPort, ref PacketRecord r, int depth, bool quoted)
    {
        switch (port)
        {
            case PortDns:
            case PortMdns:
            case PortLlmnr:
                if ((r.Present & FieldPresence.Dns) == 0)
                {
                    ReadDns(frame, payload, end, DnsReader.Classify(port, port), ref r);
                }

                return true;
            case PortTeredo:
                return !quoted && DissectTeredo(frame, payload, end, ref r, depth);
            case PortL2tp:
                return !quoted && DissectL2tp(frame, payload, end, ref r, depth);
            default:
                return false;
        }
    }

    /// <summary>
    /// Whether a UDP payload on a port other than 3544 is Teredo (RFC 4380 5.1.1): tshark's
    /// <c>teredo.heuristic_teredo</c> test, then Zeek's. tshark's: after an optional authentication header and
    /// an optional origin indication, at least an IPv6 header's worth of captured bytes, version 6, and a
    /// payload length that is exactly what the datagram carries after that header. Zeek's, which keeps
    /// other protocols' datagrams that happen to pass from being taken as IPv6: an address in the Teredo
    /// prefix, or a bubble (RFC 4380 2.8: no next header, no payload).
    /// </summary>
    /// <param name="payload">The captured UDP payload.</param>
    /// <param name="sentLength">The UDP payload's length as sent (more than <paramref name="payload"/> holds when the capture was cut).</param>
    private static bool IsTeredo(ReadOnlySpan<byte> payload, int sentLength)
    {
        if (payload.Length < Ipv6HeaderLength)
        {
            return false;
        }

        int position = 0;
        ushort indicator = BinaryPrimitives.ReadUInt16BigEndian(payload);
        if (indicator == TeredoAuthenticationIndicator)
        {
            position = TeredoAuthenticationFixedLength + payload[TeredoIdLengthOffset] + payload[TeredoAuthLengthOffset];
            if (payload.Length - position < Ipv6HeaderLength)
            {
                return false;
            }

            indicator = BinaryPrimitives.ReadUInt16BigEndian(payload[position..]);
        }

        if (indicator == TeredoOriginIndicator)
        {
            position += TeredoOriginIndicationLength;
            if (payload.Length - position < Ipv6HeaderLength)
            {
                return false;
            }

            indicator = BinaryPrimitives.ReadUInt16BigEndian(payload[position..]);
        }

        if (indicator >> 12 != 6)
        {
            return false;
        }

        var header = payload.Slice(position, Ipv6HeaderLength);
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(header[Ipv6PayloadLengthOffset..]);
        if (payloadLength > MaxTeredoPayloadLength || sentLength - position - Ipv6HeaderLength != payloadLength)
        {
            return false;
        }

        bool bubble = payloadLength == 0 && header[Ipv6NextHeaderOffset] == NoNextHeader;
        return bubble
            || BinaryPrimitives.ReadUInt32BigEndian(header[Ipv6SourceOffset..]) == Ipv6AddressClassifier.TeredoPrefix
            || BinaryPrimitives.ReadUInt32BigEndian(header[Ipv6DestinationOffset..]) == Ipv6AddressClassifier.TeredoPrefix;
    }

    private static bool DissectTeredo(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth)
    {
        var data = frame[offset..end];
        int position = 0;

        // Like tshark, UDP port 3544 is taken as Teredo and whatever follows the optional headers as IPv6
        // (elsewhere IsTeredo has checked the headers first).
        r.Push(Layer.Teredo);
        if (data.Length >= 2 && BinaryPrimitives.ReadUInt16BigEndian(data) == TeredoAuthenticationIndicator)
        {
            if (data.Length < TeredoAuthLengthOffset + 1)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return true;
            }

            position = TeredoAuthenticationFixedLength + data[TeredoIdLengthOffset] + data[TeredoAuthLengthOffset];
            if (data.Length < position)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return true;
            }
        }

        if (data.Length - position >= 2 && BinaryPrimitives.ReadUInt16BigEndian(data[position..]) == TeredoOriginIndicator)
        {
            if (data.Length - position < TeredoOriginIndicationLength)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return true;
            }

            position += TeredoOriginIndicationLength;
        }

        if (position < data.Length)
        {
            DissectIpv6(frame, offset + position, end, ref r, depth + 1, Encapsulation.Teredo, quoted: false);
        }

        return true;
    }

    private static bool DissectL2tp(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth)
    {
        const ushort TypeBit = 0x8000, LengthBit = 0x4000, SequenceBit = 0x0800, OffsetBit = 0x0200;
        var data = frame[offset..end];
        if (data.Length < 2)
        {
            return false;
        }

        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(data);
        if ((flags & 0x000F) != 2)
        {
            return false;
        }

        r.Push(Layer.L2tp);
        if ((flags & TypeBit) != 0)
        {
            return true; // control message: no payload
        }

        int position = 2 + ((flags & LengthBit) != 0 ? 2 : 0) + 4 + ((flags & SequenceBit) != 0 ? 4 : 0);
        if ((flags & OffsetBit) != 0)
        {
            if (data.Length < position + 2)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return true;
            }

            position += 2 + BinaryPrimitives.ReadUInt16BigEndian(data[position..]);
        }

        if (data.Length < position)
        {
            r.Anomalies |= Anomaly.MalformedTunnel;
            return true;
        }

        DissectPpp(frame[..end], offset + position, ref r, depth + 1, Encapsulation.L2tp);
        return true;
    }

    private static void DissectGre(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth)
    {
        const ushort ChecksumBit = 0x8000, RoutingBit = 0x4000, KeyBit = 0x2000, SequenceBit = 0x1000, AckBit = 0x0080;
        if (depth > MaxEncapsulationDepth)
        {
            r.Anomalies |= Anomaly.EncapsulationTooDeep;
            return;
        }

        r.Push(Layer.Gre);
        var data = frame[offset..end];
        if (data.Length < 4)
        {
            r.Anomalies |= Anomaly.MalformedTunnel;
            return;
        }

        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(data);
        ushort protocol = BinaryPrimitives.ReadUInt16BigEndian(data[2..]);
        int version = flags & 0x7;
        if ((flags & RoutingBit) != 0 || version > 1)
        {
            return; // source-routed GRE (RFC 1701) and unknown versions are not followed
        }

        int length = 4 + ((flags & ChecksumBit) != 0 ? 4 : 0) + ((flags & KeyBit) != 0 ? 4 : 0) + ((flags & SequenceBit) != 0 ? 4 : 0);
        if (version == 1 && (flags & AckBit) != 0)
        {
            length += 4; // enhanced GRE (PPTP, RFC 2637) acknowledgment number
        }

        if (data.Length < length)
        {
            r.Anomalies |= Anomaly.MalformedTunnel;
            return;
        }

        int inner = offset + length;
        var bounded = frame[..end];
        switch (protocol)
        {
            case EtherTypeIpv6:
                DissectIpv6(bounded, inner, end, ref r, depth, Encapsulation.Gre, quoted: false);
                break;
            case EtherTypeIpv4:
                DissectIpv4(bounded, inner, end, ref r, depth, Encapsulation.Gre);
                break;
            case EtherTypePpp:
                DissectPpp(bounded, inner, ref r, depth, Encapsulation.Gre);
                break;
            case EtherTypeTransparentBridging:
                DissectEthernet(bounded, inner, ref r, depth, Encapsulation.Gre);
                break;
            case EtherTypeErspanII:
            case EtherTypeErspanIII:
                DissectErspan(bounded, inner, protocol == EtherTypeErspanIII, (flags & SequenceBit) != 0, ref r, depth);
                break;
        }
    }

    private static void DissectErspan(ReadOnlySpan<byte> frame, int offset, bool typeThree, bool hasHeader, ref PacketRecord r, int depth)
    {
        const int TypeTwoHeaderLength = 8;
        const int TypeThreeHeaderLength = 12;
        const int PlatformSubheaderLength = 8;
        r.Push(Layer.Erspan);

        // ERSPAN type I has no header of its own; GRE without a sequence number marks it.
        int length = !hasHeader ? 0 : typeThree ? TypeThreeHeaderLength : TypeTwoHeaderLength;
        var data = frame[offset..];
        if (data.Length < length)
        {
            r.Anomalies |= Anomaly.MalformedTunnel;
            return;
        }

        if (typeThree && hasHeader && (data[TypeThreeHeaderLength - 1] & 0x01) != 0)
        {
            length += PlatformSubheaderLength;
            if (data.Length < length)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return;
            }
        }

        DissectEthernet(frame, offset + length, ref r, depth, Encapsulation.Gre);
    }

    private static void DissectIcmpv4(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, bool quoted)
    {
        // ICMP errors quote the invoking IPv4 header and the start of its payload; tshark reports the
        // quoted transport fields as the frame's first occurrence, so survey6 dissects them too.
        const int QuoteOffset = 8;
        var data = frame[offset..end];
        if (quoted || data.Length <= QuoteOffset)
        {
            return;
        }

        switch (data[0])
        {
            case 3:  // destination unreachable
            case 4:  // source quench
            case 5:  // redirect
            case 11: // time exceeded
            case 12: // parameter problem
                DissectIpv4(frame, offset + QuoteOffset, end, ref r, depth + 1, Encapsulation.Other, quoted: true);
                break;
        }
    }

    private static void DissectIcmpv6(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, bool quoted)
    {
        r.Push(Layer.Icmpv6);
        var data = frame[offset..end];
        bool first = (r.Present & FieldPresence.Icmpv6Type) == 0;
        if (data.Length < 4)
        {
            r.Anomalies |= Anomaly.TruncatedIcmpv6;
        }

        if (data.Length < 1)
        {
            return;
        }

        byte type = data[0];
        if (first)
        {
            r.Icmpv6Type = type;
            r.Present |= FieldPresence.Icmpv6Type;
            if (data.Length >= 2)
            {
                r.Icmpv6Code = data[1];
                r.Present |= FieldPresence.Icmpv6Code;
            }
        }

        if (quoted || !first)
        {
            return;
        }

        switch (type)
        {
            case 1: // Destination Unreachable
            case 2: // Packet Too Big
            case 3: // Time Exceeded
            case 4: // Parameter Problem
                if (data.Length > Icmpv6HeaderLength)
                {
                    DissectIpv6(frame, offset + Icmpv6HeaderLength, end, ref r, depth + 1, Encapsulation.Other, quoted: true);
                }
                else if (data.Length < Icmpv6HeaderLength)
                {
                    r.Anomalies |= Anomaly.TruncatedIcmpv6;
                }

                break;
            case 133: // Router Solicitation
                ReadNdOptions(data, RsOptionsOffset, ref r);
                break;
            case 134: // Router Advertisement
                if (data.Length < RaOptionsOffset)
                {
                    r.Anomalies |= Anomaly.TruncatedIcmpv6;
                    break;
                }

                r.Present |= FieldPresence.RouterAdvertisement;
                r.RouterAdvertisementFlags = data[RaFlagsOffset];
                r.RouterLifetime = BinaryPrimitives.ReadUInt16BigEndian(data[RaLifetimeOffset..]);
                ReadNdOptions(data, RaOptionsOffset, ref r);
                break;
            case 135: // Neighbor Solicitation
            case 136: // Neighbor Advertisement
            case 137: // Redirect
                if (data.Length < NdTargetOffset + Ipv6Address.Length)
                {
                    r.Anomalies |= Anomaly.TruncatedIcmpv6;
                    break;
                }

                r.Present |= FieldPresence.NdTarget;
                r.NdTarget = Ipv6Address.Read(data[NdTargetOffset..]);
                ReadNdOptions(data, type == 137 ? NdOptionsOffset + Ipv6Address.Length : NdOptionsOffset, ref r);
                break;
        }
    }

    private static void ReadNdOptions(ReadOnlySpan<byte> message, int offset, ref PacketRecord r)
    {
        // Options are (type, length in 8-octet units); a zero length is invalid and ends the walk (RFC 4861 4.6).
        while (offset + 2 <= message.Length)
        {
            int length = message[offset + 1] * 8;
            if (length == 0 || offset + length > message.Length)
            {
                if (length == 0)
                {
                    return;
                }

                r.Anomalies |= Anomaly.TruncatedIcmpv6;
                return;
            }

            if (message[offset] == PrefixOptionType && length >= PrefixOptionLength && r.AdvertisedPrefixCount < PrefixList.Capacity)
            {
                r.AdvertisedPrefixLengths[r.AdvertisedPrefixCount] = message[offset + 2];
                r.AdvertisedPrefixes[r.AdvertisedPrefixCount] = Ipv6Address.Read(message[(offset + 16)..]);
                r.AdvertisedPrefixCount++;
            }

            offset += length;
        }
    }

    private static void ReadDns(ReadOnlySpan<byte> frame, int offset, int end, DnsTransportKind kind, ref PacketRecord r)
    {
        if (offset >= end)
        {
            return;
        }

        r.Push(Layer.Dns);
        r.Present |= FieldPresence.Dns;
        r.DnsTransport = kind;
        r.DnsOffset = offset;
        r.DnsLength = end - offset;
        DnsReader.Read(frame[offset..end], ref r.Dns);
        var status = r.Dns.Status;
        if ((status & DnsStatus.Truncated) != 0)
        {
            r.Anomalies |= Anomaly.TruncatedDns;
        }

        if ((status & ~(DnsStatus.Truncated | DnsStatus.TrailingData)) != 0)
        {
            r.Anomalies |= Anomaly.MalformedDns;
        }
    }
}

using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Dissection;

// IPv6: the fixed header, the extension-header chain, and the flow view.
public static partial class PacketDissector
{
    // The IPv6 header (RFC 8200 3): version (4 bits), traffic class (8), flow label (20), then these.
    private const int Ipv6HeaderLength = 40;
    private const int Ipv6PayloadLengthOffset = 4;
    private const int Ipv6NextHeaderOffset = 6;
    private const int Ipv6HopLimitOffset = 7;
    private const int Ipv6SourceOffset = 8;
    private const int Ipv6DestinationOffset = 24;
    private const uint Ipv6FlowLabelMask = 0x000F_FFFF;

    // Every extension header starts with the next header (RFC 8200 4); the options headers, the Routing
    // header and the Mobility header then give their length in 8-octet units, not counting the first 8.
    private const int ExtensionNextHeaderOffset = 0;
    private const int ExtensionLengthOffset = 1;
    private const int ExtensionLengthUnit = 8;
    private const int ExtensionLengthBias = 1;

    // Routing header (RFC 8200 4.4).
    private const int RoutingTypeOffset = 2;
    private const int SegmentsLeftOffset = 3;
    private const byte DeprecatedRoutingType = 0; // RH0, deprecated by RFC 5095

    // Mobility header (RFC 6275 6.1.1): the message type follows the length.
    private const int MobilityTypeOffset = 2;

    // Fragment header (RFC 8200 4.5): offset in 8-octet units (13 bits), 2 reserved bits, the M flag; identification.
    private const int FragmentHeaderLength = 8;
    private const int FragmentOffsetAndFlagsOffset = 2;
    private const int FragmentOffsetShift = 3;
    private const ushort FragmentMoreFlag = 0x0001;
    private const int FragmentIdentificationOffset = 4;

    // Authentication header (RFC 4302 2): its length is in 32-bit words, minus 2.
    private const int AhLengthUnit = 4;
    private const int AhLengthBias = 2;
    private const int AhSpiOffset = 4;

    // ESP (RFC 4303 2): the SPI, then nothing readable.
    private const int EspSpiOffset = 0;

    /// <summary>An extension header's reader returns this when the chain ends at it.</summary>
    private const int ChainEnds = -1;

    private static void DissectIpv6(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, Encapsulation via, bool quoted)
    {
        if (depth > MaxEncapsulationDepth)
        {
            r.Anomalies |= Anomaly.EncapsulationTooDeep;
            return;
        }

        bool first = CountIpv6Header(ref r, via, quoted);
        var header = frame[offset..end];
        if (header.Length < Ipv6HeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedIpv6Header;
        }

        if (!HasVersion6(header, first, ref r))
        {
            return;
        }

        if (first)
        {
            ReadCapturedHeaderFields(header, ref r);
        }

        if (header.Length < Ipv6HeaderLength)
        {
            return;
        }

        end = PacketEnd(header, offset, end, ref r);
        bool flowOwner = !quoted;
        if (flowOwner)
        {
            StartFlow(header, offset, ref r);
        }

        DissectExtensionChain(frame, offset + Ipv6HeaderLength, end, header[Ipv6NextHeaderOffset], ref r, depth, flowOwner, quoted, recordChain: first);
    }

    /// <summary>Counts an IPv6 header in the path and the record; true when it is the frame's first (tshark's first occurrence).</summary>
    private static bool CountIpv6Header(ref PacketRecord r, Encapsulation via, bool quoted)
    {
        r.Push(quoted ? Layer.QuotedIpv6 : Layer.Ipv6);
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

        return first;
    }

    /// <summary>Whether the header says version 6; the first header's version is recorded whatever it is.</summary>
    private static bool HasVersion6(ReadOnlySpan<byte> header, bool first, ref PacketRecord r)
    {
        if (header.Length < 1)
        {
            return false;
        }

        byte version = (byte)(header[0] >> 4);
        if (first)
        {
            r.Ipv6Version = version;
        }

        if (version != 6)
        {
            r.Anomalies |= Anomaly.BadIpVersion;
            return false;
        }

        return true;
    }

    /// <summary>The first header's fields: like tshark, each one whose bytes were captured, even when the header is cut short.</summary>
    private static void ReadCapturedHeaderFields(ReadOnlySpan<byte> header, ref PacketRecord r)
    {
        // tshark reads version, traffic class and flow label as one 32-bit word.
        if (header.Length >= sizeof(uint))
        {
            r.Ipv6TrafficClass = (byte)((BinaryPrimitives.ReadUInt16BigEndian(header) >> 4) & 0xFF);
            r.Ipv6FlowLabel = BinaryPrimitives.ReadUInt32BigEndian(header) & Ipv6FlowLabelMask;
            r.Present |= FieldPresence.Ipv6TrafficClass | FieldPresence.Ipv6FlowLabel;
        }

        if (header.Length >= Ipv6PayloadLengthOffset + sizeof(ushort))
        {
            r.Ipv6PayloadLength = BinaryPrimitives.ReadUInt16BigEndian(header[Ipv6PayloadLengthOffset..]);
            r.Present |= FieldPresence.Ipv6PayloadLength;
        }

        if (header.Length > Ipv6NextHeaderOffset)
        {
            r.Ipv6NextHeader = header[Ipv6NextHeaderOffset];
            r.Present |= FieldPresence.Ipv6NextHeader;
        }

        if (header.Length > Ipv6HopLimitOffset)
        {
            r.Ipv6HopLimit = header[Ipv6HopLimitOffset];
            r.Present |= FieldPresence.Ipv6HopLimit;
        }

        if (header.Length >= Ipv6SourceOffset + Ipv6Address.Length)
        {
            r.Ipv6Source = Ipv6Address.Read(header[Ipv6SourceOffset..]);
            r.Present |= FieldPresence.Ipv6Source;
        }

        if (header.Length >= Ipv6DestinationOffset + Ipv6Address.Length)
        {
            r.Ipv6Destination = Ipv6Address.Read(header[Ipv6DestinationOffset..]);
            r.Present |= FieldPresence.Ipv6Destination;
        }
    }

    /// <summary>Where the packet ends: its payload length, unless the frame holds less (or it is a jumbogram).</summary>
    private static int PacketEnd(ReadOnlySpan<byte> header, int offset, int end, ref PacketRecord r)
    {
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(header[Ipv6PayloadLengthOffset..]);

        // Payload length 0 with a Hop-by-Hop header may be a jumbogram (RFC 2675): then the frame bounds the packet.
        if (payloadLength == 0 && header[Ipv6NextHeaderOffset] == HopByHop)
        {
            return end;
        }

        int declaredEnd = offset + Ipv6HeaderLength + payloadLength;
        if (declaredEnd <= end)
        {
            return declaredEnd;
        }

        if (r.CapturedLength == r.FrameLength)
        {
            r.Anomalies |= Anomaly.PayloadLengthMismatch;
        }

        return end;
    }

    /// <summary>
    /// This packet is the flow view's (so far): its addresses, and ports and transport details only once a transport
    /// header says so. A tunnel's inner packet replaces its carrier here, so whatever the carrier's transport left
    /// (Teredo's UDP, say) is cleared.
    /// </summary>
    private static void StartFlow(ReadOnlySpan<byte> header, int offset, ref PacketRecord r)
    {
        r.Present = (r.Present & ~FlowTransportFields) | FieldPresence.Flow;
        r.FlowSource = Ipv6Address.Read(header[Ipv6SourceOffset..]);
        r.FlowDestination = Ipv6Address.Read(header[Ipv6DestinationOffset..]);
        r.FlowSourcePort = 0;
        r.FlowDestinationPort = 0;
        r.FlowPayloadBytes = BinaryPrimitives.ReadUInt16BigEndian(header[Ipv6PayloadLengthOffset..]);
        r.FlowPayloadOffset = offset + Ipv6HeaderLength;
        r.FlowTcpFlags = 0;
        r.FlowTcpSequence = 0;
        r.FlowTcpAcknowledgement = 0;
        r.FlowTcpWindow = 0;
        r.FlowIcmpv6Type = 0;
        r.FlowIcmpv6Code = 0;
        r.FlowDataLength = 0;
    }

    private const FieldPresence FlowTransportFields =
        FieldPresence.FlowTcp | FieldPresence.FlowUdp | FieldPresence.FlowIcmpv6 | FieldPresence.FlowDns | FieldPresence.FlowQuote;

    /// <summary>
    /// Octets of the flow packet's payload from <paramref name="offset"/> on, less <paramref name="headerLength"/>, by the
    /// IPv6 payload length (not the captured bytes, so a snap length does not shrink it); never negative.
    /// </summary>
    private static uint FlowDataAfter(in PacketRecord r, int offset, int headerLength)
    {
        long length = (long)r.FlowPayloadBytes - (offset - r.FlowPayloadOffset) - headerLength;
        return length > 0 ? (uint)length : 0;
    }

    /// <summary>Follows the extension headers from <paramref name="position"/> to the upper layer, which it dissects.</summary>
    private static void DissectExtensionChain(ReadOnlySpan<byte> frame, int position, int end, byte nextHeader, ref PacketRecord r, int depth, bool flowOwner, bool quoted, bool recordChain)
    {
        for (int count = 0; count < MaxExtensionHeaders; count++)
        {
            if (nextHeader is not (HopByHop or DestinationOptions or Routing or Mobility or MobilityOld or Fragment or Ah or Esp))
            {
                SetFlowProtocol(ref r, flowOwner, nextHeader);
                if (nextHeader != NoNextHeader)
                {
                    var payload = new IpPayload
                    {
                        Frame = frame,
                        Offset = position,
                        End = end,
                        Protocol = nextHeader,
                        Depth = depth,
                        Ipv6Via = Encapsulation.Ipv6InIpv6,
                        Ipv4Via = Encapsulation.Other,
                        FlowOwner = flowOwner,
                        Quoted = quoted,
                    };
                    DissectUpperLayer(in payload, ref r);
                }

                return;
            }

            Record(ref r, recordChain, nextHeader);
            var header = frame[position..end];
            int length = nextHeader switch
            {
                Mobility or MobilityOld => ReadMobilityHeader(header, nextHeader, ref r, flowOwner),
                Fragment => ReadFragmentHeader(header, ref r, flowOwner),
                Ah => ReadAuthenticationHeader(header, ref r, flowOwner),
                Esp => ReadEspHeader(header, ref r, flowOwner),
                _ => ReadOptionsOrRoutingHeader(header, nextHeader, ref r, flowOwner),
            };
            if (length == ChainEnds)
            {
                return;
            }

            nextHeader = header[ExtensionNextHeaderOffset];
            position += length;
        }

        r.Anomalies |= Anomaly.ExtensionChainTooLong;
    }

    /// <summary>Hop-by-Hop, Destination Options or Routing (RFC 8200 4.3, 4.4, 4.6): the header's length, or <see cref="ChainEnds"/>.</summary>
    private static int ReadOptionsOrRoutingHeader(ReadOnlySpan<byte> header, byte type, ref PacketRecord r, bool flowOwner)
    {
        if (type == Routing && header.Length > SegmentsLeftOffset && (r.Present & FieldPresence.Routing) == 0)
        {
            r.Present |= FieldPresence.Routing;
            r.RoutingType = header[RoutingTypeOffset];
            r.SegmentsLeft = header[SegmentsLeftOffset];
            if (r.RoutingType == DeprecatedRoutingType)
            {
                r.Anomalies |= Anomaly.DeprecatedRoutingHeader;
            }
        }

        return CapturedLength(header, type, ExtensionLengthUnit, ExtensionLengthBias, ref r, flowOwner);
    }

    /// <summary>The Mobility header (RFC 6275 6.1.1) ends the chain: its payload protocol is reserved to be No Next Header.</summary>
    private static int ReadMobilityHeader(ReadOnlySpan<byte> header, byte type, ref PacketRecord r, bool flowOwner)
    {
        if (header.Length > MobilityTypeOffset && (r.Present & FieldPresence.MobilityType) == 0)
        {
            r.Present |= FieldPresence.MobilityType;
            r.MobilityType = header[MobilityTypeOffset];
        }

        if (header.Length <= ExtensionLengthOffset)
        {
            StopTruncated(ref r, flowOwner, type);
            return ChainEnds;
        }

        SetFlowProtocol(ref r, flowOwner, type);
        if (header.Length < (header[ExtensionLengthOffset] + ExtensionLengthBias) * ExtensionLengthUnit)
        {
            r.Anomalies |= Anomaly.TruncatedExtensionHeader;
        }

        return ChainEnds;
    }

    /// <summary>The Fragment header (RFC 8200 4.5); a later fragment ends the chain, as its bytes continue a header we cannot see.</summary>
    private static int ReadFragmentHeader(ReadOnlySpan<byte> header, ref PacketRecord r, bool flowOwner)
    {
        if (header.Length < FragmentHeaderLength)
        {
            StopTruncated(ref r, flowOwner, Fragment);
            return ChainEnds;
        }

        ushort offsetAndFlags = BinaryPrimitives.ReadUInt16BigEndian(header[FragmentOffsetAndFlagsOffset..]);
        int fragmentOffset = offsetAndFlags >> FragmentOffsetShift;
        if ((r.Present & FieldPresence.Fragment) == 0)
        {
            r.Present |= FieldPresence.Fragment;
            r.FragmentOffset = (ushort)fragmentOffset;
            r.FragmentMore = (offsetAndFlags & FragmentMoreFlag) != 0;
            r.FragmentId = BinaryPrimitives.ReadUInt32BigEndian(header[FragmentIdentificationOffset..]);
        }

        if (fragmentOffset != 0)
        {
            SetFlowProtocol(ref r, flowOwner, header[ExtensionNextHeaderOffset]);
            return ChainEnds;
        }

        return FragmentHeaderLength;
    }

    /// <summary>The Authentication header (RFC 4302 2): its SPI, then its length, or <see cref="ChainEnds"/>.</summary>
    private static int ReadAuthenticationHeader(ReadOnlySpan<byte> header, ref PacketRecord r, bool flowOwner)
    {
        ReadSpi(header, AhSpiOffset, FieldPresence.AhSpi, ref r.AhSpi, ref r.Present);
        return CapturedLength(header, Ah, AhLengthUnit, AhLengthBias, ref r, flowOwner);
    }

    /// <summary>ESP (RFC 4303 2) ends the chain: everything after the SPI is encrypted.</summary>
    private static int ReadEspHeader(ReadOnlySpan<byte> header, ref PacketRecord r, bool flowOwner)
    {
        ReadSpi(header, EspSpiOffset, FieldPresence.EspSpi, ref r.EspSpi, ref r.Present);
        SetFlowProtocol(ref r, flowOwner, Esp);
        return ChainEnds;
    }

    /// <summary>
    /// The length an extension header declares, (length field + <paramref name="bias"/>) x <paramref name="unit"/>
    /// octets, when all of it was captured; otherwise the cut is flagged and the chain ends.
    /// </summary>
    private static int CapturedLength(ReadOnlySpan<byte> header, byte type, int unit, int bias, ref PacketRecord r, bool flowOwner)
    {
        if (header.Length <= ExtensionLengthOffset)
        {
            StopTruncated(ref r, flowOwner, type);
            return ChainEnds;
        }

        int length = (header[ExtensionLengthOffset] + bias) * unit;
        if (header.Length < length)
        {
            StopTruncated(ref r, flowOwner, type);
            return ChainEnds;
        }

        return length;
    }

    /// <summary>The first AH or ESP security parameter index of the frame, if its four octets were captured.</summary>
    private static void ReadSpi(ReadOnlySpan<byte> header, int offset, FieldPresence field, ref uint spi, ref FieldPresence present)
    {
        if (header.Length >= offset + sizeof(uint) && (present & field) == 0)
        {
            present |= field;
            spi = BinaryPrimitives.ReadUInt32BigEndian(header[offset..]);
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
}

using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Dissection;

// Tunnels that carry IPv6 or a link layer: Teredo, L2TPv2, GRE, ERSPAN.
public static partial class PacketDissector
{
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

    // L2TPv2 header (RFC 2661 3.1): flags and version, then optional length, tunnel and session ids,
    // optional Ns and Nr, optional offset size and padding.
    private const ushort L2tpTypeBit = 0x8000;
    private const ushort L2tpLengthBit = 0x4000;
    private const ushort L2tpSequenceBit = 0x0800;
    private const ushort L2tpOffsetBit = 0x0200;
    private const ushort L2tpVersionMask = 0x000F;
    private const ushort L2tpVersion2 = 2;
    private const int L2tpFlagsLength = 2;
    private const int L2tpLengthFieldLength = 2;
    private const int L2tpTunnelAndSessionLength = 4;
    private const int L2tpSequenceLength = 4;
    private const int L2tpOffsetSizeLength = 2;

    // GRE header (RFC 2784 2, RFC 2890 2; version 1 is PPTP's enhanced GRE, RFC 2637 4.1): flags and
    // version, protocol type, then optional 4-octet fields in the order checksum, key, sequence, ack.
    private const ushort GreChecksumBit = 0x8000;
    private const ushort GreRoutingBit = 0x4000;
    private const ushort GreKeyBit = 0x2000;
    private const ushort GreSequenceBit = 0x1000;
    private const ushort GreAckBit = 0x0080;
    private const ushort GreVersionMask = 0x0007;
    private const int GreBaseHeaderLength = 4;
    private const int GreProtocolOffset = 2;
    private const int GreOptionalFieldLength = 4;

    // ERSPAN (draft-foschiano-erspan): type II and III headers; a type III header may carry an 8-octet
    // platform-specific subheader, flagged by the last bit of its header.
    private const int ErspanTypeTwoHeaderLength = 8;
    private const int ErspanTypeThreeHeaderLength = 12;
    private const int ErspanPlatformSubheaderLength = 8;
    private const byte ErspanTypeThreeSubheaderBit = 0x01;

    /// <summary>
    /// Teredo on a port other than 3544, when the options ask for it and the payload passes <see cref="IsTeredo"/>.
    /// </summary>
    private static void TryTeredoOnAnyPort(ReadOnlySpan<byte> frame, int payload, int payloadEnd, int udpLength, ref PacketRecord r, int depth)
    {
        if ((r.Options & DissectorOptions.TeredoOnAnyPort) == 0)
        {
            return;
        }

        // tshark gives the heuristic the datagram's length as sent; when the snap length cut the frame,
        // only the UDP length field still says what that was.
        bool cut = r.CapturedLength < r.FrameLength;
        int sentPayloadLength = cut && udpLength >= UdpHeaderLength ? udpLength - UdpHeaderLength : payloadEnd - payload;
        if (IsTeredo(frame[payload..payloadEnd], sentPayloadLength))
        {
            DissectTeredo(frame, payload, payloadEnd, ref r, depth);
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
        if (data.Length >= sizeof(ushort) && BinaryPrimitives.ReadUInt16BigEndian(data) == TeredoAuthenticationIndicator)
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

        if (data.Length - position >= sizeof(ushort) && BinaryPrimitives.ReadUInt16BigEndian(data[position..]) == TeredoOriginIndicator)
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
        var data = frame[offset..end];
        if (data.Length < L2tpFlagsLength)
        {
            return false;
        }

        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(data);
        if ((flags & L2tpVersionMask) != L2tpVersion2)
        {
            return false;
        }

        r.Push(Layer.L2tp);
        if ((flags & L2tpTypeBit) != 0)
        {
            return true; // control message: no payload
        }

        int position = L2tpFlagsLength
            + ((flags & L2tpLengthBit) != 0 ? L2tpLengthFieldLength : 0)
            + L2tpTunnelAndSessionLength
            + ((flags & L2tpSequenceBit) != 0 ? L2tpSequenceLength : 0);
        if ((flags & L2tpOffsetBit) != 0)
        {
            if (data.Length < position + L2tpOffsetSizeLength)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return true;
            }

            position += L2tpOffsetSizeLength + BinaryPrimitives.ReadUInt16BigEndian(data[position..]);
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
        if (depth > MaxEncapsulationDepth)
        {
            r.Anomalies |= Anomaly.EncapsulationTooDeep;
            return;
        }

        r.Push(Layer.Gre);
        var data = frame[offset..end];
        if (data.Length < GreBaseHeaderLength)
        {
            r.Anomalies |= Anomaly.MalformedTunnel;
            return;
        }

        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(data);
        ushort protocol = BinaryPrimitives.ReadUInt16BigEndian(data[GreProtocolOffset..]);
        int version = flags & GreVersionMask;
        if ((flags & GreRoutingBit) != 0 || version > 1)
        {
            return; // source-routed GRE (RFC 1701) and unknown versions are not followed
        }

        int optionalFields = ((flags & GreChecksumBit) != 0 ? 1 : 0) + ((flags & GreKeyBit) != 0 ? 1 : 0) + ((flags & GreSequenceBit) != 0 ? 1 : 0);
        if (version == 1 && (flags & GreAckBit) != 0)
        {
            optionalFields++; // enhanced GRE's acknowledgment number
        }

        int length = GreBaseHeaderLength + (optionalFields * GreOptionalFieldLength);

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
                DissectErspan(bounded, inner, protocol == EtherTypeErspanIII, (flags & GreSequenceBit) != 0, ref r, depth);
                break;
        }
    }

    private static void DissectErspan(ReadOnlySpan<byte> frame, int offset, bool typeThree, bool hasHeader, ref PacketRecord r, int depth)
    {
        r.Push(Layer.Erspan);

        // ERSPAN type I has no header of its own; GRE without a sequence number marks it.
        int length = !hasHeader ? 0 : typeThree ? ErspanTypeThreeHeaderLength : ErspanTypeTwoHeaderLength;
        var data = frame[offset..];
        if (data.Length < length)
        {
            r.Anomalies |= Anomaly.MalformedTunnel;
            return;
        }

        if (typeThree && hasHeader && (data[ErspanTypeThreeHeaderLength - 1] & ErspanTypeThreeSubheaderBit) != 0)
        {
            length += ErspanPlatformSubheaderLength;
            if (data.Length < length)
            {
                r.Anomalies |= Anomaly.MalformedTunnel;
                return;
            }
        }

        DissectEthernet(frame, offset + length, ref r, depth, Encapsulation.Gre);
    }
}

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
}

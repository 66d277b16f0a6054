using System.Buffers.Binary;

namespace Survey6.Packets.Dissection;

// IPv4 and ICMP: the carrier of 6in4 and Teredo, and quotes in ICMP errors.
public static partial class PacketDissector
{
    // The IPv4 header (RFC 791 3.1); options, if any, lie between the destination address and the payload.
    private const int Ipv4MinHeaderLength = 20;
    private const int Ipv4VersionAndIhlOffset = 0;      // version in the high nibble, header length in 32-bit words in the low
    private const int Ipv4TotalLengthOffset = 2;        // header and payload, in octets
    private const int Ipv4FlagsAndFragmentOffset = 6;   // 3 flag bits, then the fragment offset in 8-octet units
    private const ushort Ipv4FragmentOffsetMask = 0x1FFF;
    private const int Ipv4ProtocolOffset = 9;
    private const int Ipv4SourceOffset = 12;
    private const int Ipv4DestinationOffset = 16;

    // RFC 792: the ICMP messages that quote the invoking datagram's header and first 8 octets after a
    // 4-octet unused (or type-specific) word, so the quote starts at octet 8.
    private const int IcmpTypeOffset = 0;
    private const int IcmpQuoteOffset = 8;
    private const byte IcmpDestinationUnreachable = 3;
    private const byte IcmpSourceQuench = 4;
    private const byte IcmpRedirect = 5;
    private const byte IcmpTimeExceeded = 11;
    private const byte IcmpParameterProblem = 12;

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

        byte versionAndIhl = data[Ipv4VersionAndIhlOffset];
        if (versionAndIhl >> 4 != 4)
        {
            r.Anomalies |= Anomaly.BadIpVersion;
            return;
        }

        int headerLength = (versionAndIhl & 0x0F) * 4;
        if (headerLength < Ipv4MinHeaderLength)
        {
            r.Anomalies |= Anomaly.BadIpv4HeaderLength;
            return;
        }

        byte protocol = data[Ipv4ProtocolOffset];
        if ((r.Present & FieldPresence.Ipv4Header) == 0)
        {
            r.Present |= FieldPresence.Ipv4Header;
            r.Ipv4Source = BinaryPrimitives.ReadUInt32BigEndian(data[Ipv4SourceOffset..]);
            r.Ipv4Destination = BinaryPrimitives.ReadUInt32BigEndian(data[Ipv4DestinationOffset..]);
            r.Ipv4Protocol = protocol;
        }

        if (data.Length < headerLength)
        {
            r.Anomalies |= Anomaly.TruncatedIpv4Header;
            return;
        }

        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(data[Ipv4TotalLengthOffset..]);
        if (totalLength >= headerLength && totalLength < data.Length)
        {
            end = offset + totalLength;
        }

        // Without reassembly only the first fragment carries the upper-layer header.
        int fragmentOffset = BinaryPrimitives.ReadUInt16BigEndian(data[Ipv4FlagsAndFragmentOffset..]) & Ipv4FragmentOffsetMask;
        if (fragmentOffset != 0)
        {
            return;
        }

        // An IP packet inside IPv4 is a tunnel: 6in4 when this IPv4 is on the link, else whatever carried it.
        var innerVia = via == Encapsulation.Native ? Encapsulation.SixInFour : via;
        var payload = new IpPayload
        {
            Frame = frame,
            Offset = offset + headerLength,
            End = end,
            Protocol = protocol,
            Depth = depth,
            Ipv6Via = innerVia,
            Ipv4Via = innerVia,
            FlowOwner = false,
            Quoted = quoted,
        };
        DissectUpperLayer(in payload, ref r);
    }

    private static void DissectIcmpv4(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, bool quoted)
    {
        // ICMP errors quote the invoking IPv4 header and the start of its payload; tshark reports the
        // quoted transport fields as the frame's first occurrence, so survey6 dissects them too.
        var data = frame[offset..end];
        if (quoted || data.Length <= IcmpQuoteOffset)
        {
            return;
        }

        switch (data[IcmpTypeOffset])
        {
            case IcmpDestinationUnreachable:
            case IcmpSourceQuench:
            case IcmpRedirect:
            case IcmpTimeExceeded:
            case IcmpParameterProblem:
                DissectIpv4(frame, offset + IcmpQuoteOffset, end, ref r, depth + 1, Encapsulation.Other, quoted: true);
                break;
        }
    }
}

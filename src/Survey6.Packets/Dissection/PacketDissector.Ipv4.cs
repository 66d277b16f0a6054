using System.Buffers.Binary;

namespace Survey6.Packets.Dissection;

// IPv4 and ICMP: the carrier of 6in4 and Teredo, and quotes in ICMP errors.
public static partial class PacketDissector
{
    private const int Ipv4MinHeaderLength = 20;

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
}

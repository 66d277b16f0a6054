using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Dissection;

// ICMPv6: type and code, the packet an error quotes, Neighbor Discovery targets and options.
public static partial class PacketDissector
{
    private const int Icmpv6HeaderLength = 8;
    private const int NdTargetOffset = 8;
    private const int RaFlagsOffset = 5;
    private const int RaLifetimeOffset = 6;
    private const int RaOptionsOffset = 16;
    private const int RsOptionsOffset = 8;
    private const int NdOptionsOffset = 24;
    private const int PrefixOptionType = 3;
    private const int PrefixOptionLength = 32;

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
}

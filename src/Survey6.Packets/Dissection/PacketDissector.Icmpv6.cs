using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Dissection;

// ICMPv6: type and code, the packet an error quotes, Neighbor Discovery targets and options.
public static partial class PacketDissector
{
    // Every ICMPv6 message starts with type, code and checksum (RFC 4443 2.1).
    private const int Icmpv6TypeOffset = 0;
    private const int Icmpv6CodeOffset = 1;
    private const int Icmpv6ChecksumEnd = 4;

    // Error messages quote the invoking packet after a 4-octet type-specific word (RFC 4443 3.1-3.4).
    private const int Icmpv6ErrorQuoteOffset = 8;

    // Router Solicitation (RFC 4861 4.1): 4 reserved octets, then options.
    private const int RsOptionsOffset = 8;

    // Router Advertisement (RFC 4861 4.2): hop limit, M/O flags, router lifetime, reachable time, retransmit timer, options.
    private const int RaFlagsOffset = 5;
    private const int RaLifetimeOffset = 6;
    private const int RaOptionsOffset = 16;

    // Neighbor Solicitation and Advertisement (RFC 4861 4.3, 4.4): 4 octets, the target address, then options.
    private const int NdTargetOffset = 8;
    private const int NdOptionsOffset = NdTargetOffset + Ipv6Address.Length;

    // Redirect (RFC 4861 4.5): like a Neighbor Advertisement with the destination address after the target.
    private const int RedirectOptionsOffset = NdOptionsOffset + Ipv6Address.Length;

    // ND options (RFC 4861 4.6): type, length in 8-octet units (0 is invalid), value.
    private const int NdOptionTypeOffset = 0;
    private const int NdOptionLengthOffset = 1;
    private const int NdOptionLengthUnit = 8;

    // Prefix Information option (RFC 4861 4.6.2).
    private const byte PrefixOptionType = 3;
    private const int PrefixOptionLength = 32;
    private const int PrefixOptionPrefixLengthOffset = 2;
    private const int PrefixOptionPrefixOffset = 16;

    // Zeek counts an ICMP message's octets after the first 8: type, code, checksum and the message's first word.
    private const int Icmpv6CountedHeaderLength = 8;

    private static void DissectIcmpv6(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, int depth, bool flowOwner, bool quoted)
    {
        r.Push(Layer.Icmpv6);
        var data = frame[offset..end];
        bool first = (r.Present & FieldPresence.Icmpv6Type) == 0;
        if (data.Length < Icmpv6ChecksumEnd)
        {
            r.Anomalies |= Anomaly.TruncatedIcmpv6;
        }

        if (data.Length <= Icmpv6TypeOffset)
        {
            return;
        }

        byte type = data[Icmpv6TypeOffset];
        if (flowOwner && data.Length > Icmpv6CodeOffset)
        {
            r.FlowIcmpv6Type = type;
            r.FlowIcmpv6Code = data[Icmpv6CodeOffset];
            r.FlowDataLength = FlowDataAfter(r, offset, Icmpv6CountedHeaderLength);
            r.Present |= FieldPresence.FlowIcmpv6;
        }

        if (first)
        {
            r.Icmpv6Type = type;
            r.Present |= FieldPresence.Icmpv6Type;
            if (data.Length > Icmpv6CodeOffset)
            {
                r.Icmpv6Code = data[Icmpv6CodeOffset];
                r.Present |= FieldPresence.Icmpv6Code;
            }
        }

        if (quoted || !first)
        {
            return;
        }

        switch (type)
        {
            case Icmpv6MessageType.DestinationUnreachable:
            case Icmpv6MessageType.PacketTooBig:
            case Icmpv6MessageType.TimeExceeded:
            case Icmpv6MessageType.ParameterProblem:
                if (data.Length > Icmpv6ErrorQuoteOffset)
                {
                    if (flowOwner)
                    {
                        r.Present |= FieldPresence.FlowQuote;
                    }

                    DissectIpv6(frame, offset + Icmpv6ErrorQuoteOffset, end, ref r, depth + 1, Encapsulation.Other, quoted: true);
                }
                else if (data.Length < Icmpv6ErrorQuoteOffset)
                {
                    r.Anomalies |= Anomaly.TruncatedIcmpv6;
                }

                break;
            case Icmpv6MessageType.RouterSolicitation:
                ReadNdOptions(data, RsOptionsOffset, ref r);
                break;
            case Icmpv6MessageType.RouterAdvertisement:
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
            case Icmpv6MessageType.NeighborSolicitation:
            case Icmpv6MessageType.NeighborAdvertisement:
            case Icmpv6MessageType.Redirect:
                if (data.Length < NdOptionsOffset)
                {
                    r.Anomalies |= Anomaly.TruncatedIcmpv6;
                    break;
                }

                r.Present |= FieldPresence.NdTarget;
                r.NdTarget = Ipv6Address.Read(data[NdTargetOffset..]);
                ReadNdOptions(data, type == Icmpv6MessageType.Redirect ? RedirectOptionsOffset : NdOptionsOffset, ref r);
                break;
        }
    }

    private static void ReadNdOptions(ReadOnlySpan<byte> message, int offset, ref PacketRecord r)
    {
        // A zero length is invalid and ends the walk (RFC 4861 4.6).
        while (offset + NdOptionLengthOffset < message.Length)
        {
            int length = message[offset + NdOptionLengthOffset] * NdOptionLengthUnit;
            if (length == 0)
            {
                return;
            }

            if (offset + length > message.Length)
            {
                r.Anomalies |= Anomaly.TruncatedIcmpv6;
                return;
            }

            if (message[offset + NdOptionTypeOffset] == PrefixOptionType && length >= PrefixOptionLength && r.AdvertisedPrefixCount < PrefixList.Capacity)
            {
                r.AdvertisedPrefixLengths[r.AdvertisedPrefixCount] = message[offset + PrefixOptionPrefixLengthOffset];
                r.AdvertisedPrefixes[r.AdvertisedPrefixCount] = Ipv6Address.Read(message[(offset + PrefixOptionPrefixOffset)..]);
                r.AdvertisedPrefixCount++;
            }

            offset += length;
        }
    }
}

using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Dissection;

// IPv6: the fixed header, the extension-header chain, and the flow view.
public static partial class PacketDissector
{
    private const int Ipv6HeaderLength = 40;
    private const int Ipv6PayloadLengthOffset = 4;
    private const int Ipv6NextHeaderOffset = 6;
    private const int Ipv6HopLimitOffset = 7;
    private const int Ipv6SourceOffset = 8;
    private const int Ipv6DestinationOffset = 24;
    private const int FragmentHeaderLength = 8;

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
}

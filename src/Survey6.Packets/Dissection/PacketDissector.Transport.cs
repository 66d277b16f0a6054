using System.Buffers.Binary;

namespace Survey6.Packets.Dissection;

// What follows an IP header: TCP, UDP and the protocols their ports name, DNS.
public static partial class PacketDissector
{
    // Well-known ports.
    private const ushort PortDns = 53;
    private const ushort PortL2tp = 1701;
    private const ushort PortTeredo = 3544;
    private const ushort PortMdns = 5353;
    private const ushort PortLlmnr = 5355;

    private const int UdpHeaderLength = 8;
    private const int TcpMinHeaderLength = 20;
    private const int TcpFlagsOffset = 12;
    private const int TcpWindowOffset = 14;

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

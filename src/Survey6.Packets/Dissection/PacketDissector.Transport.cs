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

    // UDP header (RFC 768): source port, destination port, length (header and data), checksum.
    private const int UdpHeaderLength = 8;
    private const int UdpLengthOffset = 4;

    // TCP header (RFC 9293 3.1): ports at 0 and 2, then sequence and acknowledgment numbers, then the data
    // offset (header length in 32-bit words, high nibble) and the 12 bits tshark shows as tcp.flags.
    private const int TcpMinHeaderLength = 20;
    private const int TcpSequenceOffset = 4;
    private const int TcpAcknowledgementOffset = 8;
    private const int TcpFlagsOffset = 12;
    private const ushort TcpFlagsMask = 0x0FFF;
    private const int TcpWindowOffset = 14;

    // Both TCP and UDP begin with the source port, then the destination port.
    private const int SourcePortOffset = 0;
    private const int DestinationPortOffset = 2;

    // DNS over TCP prefixes each message with its length (RFC 1035 4.2.2).
    private const int DnsTcpLengthPrefix = 2;

    /// <summary>
    /// The payload of an IP header and how to treat what it holds: everything <see cref="DissectUpperLayer"/>
    /// needs besides the record. A ref struct passed by reference, so it costs no allocation.
    /// </summary>
    private readonly ref struct IpPayload
    {
        public ReadOnlySpan<byte> Frame { get; init; }

        /// <summary>Where the payload starts in <see cref="Frame"/>.</summary>
        public int Offset { get; init; }

        /// <summary>Where it ends: the captured bytes, or less when the IP header's length says so.</summary>
        public int End { get; init; }

        /// <summary>Protocol or next-header number of the payload.</summary>
        public byte Protocol { get; init; }

        /// <summary>Nesting depth of the IP header that carries the payload.</summary>
        public int Depth { get; init; }

        /// <summary>How an IPv6 packet found in the payload travelled.</summary>
        public Encapsulation Ipv6Via { get; init; }

        /// <summary>How an IPv4 packet found in the payload travelled.</summary>
        public Encapsulation Ipv4Via { get; init; }

        /// <summary>The carrier is the flow view's IPv6 packet, so the payload's ports are the flow's.</summary>
        public bool FlowOwner { get; init; }

        /// <summary>The carrier is quoted in an ICMP error: no tunnels or quotes inside it are followed.</summary>
        public bool Quoted { get; init; }
    }

    private static void DissectUpperLayer(scoped in IpPayload p, ref PacketRecord r)
    {
        switch (p.Protocol)
        {
            case ProtocolIcmp:
                DissectIcmpv4(p.Frame, p.Offset, p.End, ref r, p.Depth, p.Quoted);
                break;
            case ProtocolTcp:
                DissectTcp(p.Frame, p.Offset, p.End, ref r, p.FlowOwner);
                break;
            case ProtocolUdp:
                DissectUdp(p.Frame, p.Offset, p.End, ref r, p.Depth, p.FlowOwner, p.Quoted);
                break;
            case ProtocolIcmpv6:
                DissectIcmpv6(p.Frame, p.Offset, p.End, ref r, p.Depth, p.FlowOwner, p.Quoted);
                break;
            case ProtocolIpv6:
                DissectIpv6(p.Frame, p.Offset, p.End, ref r, p.Depth + 1, p.Ipv6Via, p.Quoted);
                break;
            case ProtocolIpv4:
                DissectIpv4(p.Frame, p.Offset, p.End, ref r, p.Depth + 1, p.Ipv4Via, p.Quoted);
                break;
            case ProtocolGre:
                DissectGre(p.Frame, p.Offset, p.End, ref r, p.Depth + 1);
                break;
        }
    }

    private static void DissectTcp(ReadOnlySpan<byte> frame, int offset, int end, ref PacketRecord r, bool flowOwner)
    {
        var data = frame[offset..end];
        if (!TryReadPorts(data, Layer.Tcp, TcpMinHeaderLength, ref r, flowOwner, out bool first, out ushort sourcePort, out ushort destinationPort))
        {
            return;
        }

        // tshark reads up to the window field before it shows the flags.
        if (data.Length < TcpWindowOffset + sizeof(ushort))
        {
            return;
        }

        int headerLength = (data[TcpFlagsOffset] >> 4) * 4;
        if (headerLength < TcpMinHeaderLength)
        {
            r.Anomalies |= Anomaly.BadTcpHeaderLength;
            return;
        }

        ushort flags = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(data[TcpFlagsOffset..]) & TcpFlagsMask);
        if (first)
        {
            r.TcpFlags = flags;
            r.Present |= FieldPresence.TcpFlags;
        }

        if (flowOwner)
        {
            r.FlowTcpFlags = flags;
            r.FlowTcpSequence = BinaryPrimitives.ReadUInt32BigEndian(data[TcpSequenceOffset..]);
            r.FlowTcpAcknowledgement = BinaryPrimitives.ReadUInt32BigEndian(data[TcpAcknowledgementOffset..]);
            r.FlowTcpWindow = BinaryPrimitives.ReadUInt16BigEndian(data[TcpWindowOffset..]);
            r.FlowDataLength = FlowDataAfter(r, offset, headerLength);
            r.Present |= FieldPresence.FlowTcp;
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
            // DNS over TCP: the length prefix, then the message (no reassembly across segments).
            int messageOffset = offset + headerLength + DnsTcpLengthPrefix;
            if (messageOffset > end)
            {
                return;
            }

            int declared = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + headerLength)..]);
            int messageEnd = Math.Min(end, messageOffset + declared);
            ReadDns(frame, messageOffset, messageEnd, kind, ref r, flowOwner);
        }
    }

    /// <summary>
    /// Starts a TCP or UDP header: its layer, a header shorter than <paramref name="minLength"/> flagged, and
    /// the port pair. tshark reads both ports before it shows either, so a header cut inside the pair reports
    /// neither. The frame's first header of the kind fills the record's ports (tshark's first occurrence).
    /// </summary>
    private static bool TryReadPorts(ReadOnlySpan<byte> header, Layer layer, int minLength, ref PacketRecord r, bool flowOwner, out bool first, out ushort sourcePort, out ushort destinationPort)
    {
        r.Push(layer);
        bool tcp = layer == Layer.Tcp;
        var fields = tcp
            ? FieldPresence.TcpSourcePort | FieldPresence.TcpDestinationPort
            : FieldPresence.UdpSourcePort | FieldPresence.UdpDestinationPort;
        first = (r.Present & fields) == 0;
        if (header.Length < minLength)
        {
            r.Anomalies |= Anomaly.TruncatedTransportHeader;
        }

        if (header.Length < DestinationPortOffset + sizeof(ushort))
        {
            sourcePort = destinationPort = 0;
            return false;
        }

        sourcePort = BinaryPrimitives.ReadUInt16BigEndian(header[SourcePortOffset..]);
        destinationPort = BinaryPrimitives.ReadUInt16BigEndian(header[DestinationPortOffset..]);
        if (first)
        {
            if (tcp)
            {
                r.TcpSourcePort = sourcePort;
                r.TcpDestinationPort = destinationPort;
            }
            else
            {
                r.UdpSourcePort = sourcePort;
                r.UdpDestinationPort = destinationPort;
            }

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
        var data = frame[offset..end];
        if (!TryReadPorts(data, Layer.Udp, UdpHeaderLength, ref r, flowOwner, out _, out ushort sourcePort, out ushort destinationPort))
        {
            return;
        }

        if (data.Length < UdpHeaderLength)
        {
            return;
        }

        int udpLength = BinaryPrimitives.ReadUInt16BigEndian(data[UdpLengthOffset..]);
        int payloadEnd = udpLength >= UdpHeaderLength && offset + udpLength < end ? offset + udpLength : end;
        int payload = offset + UdpHeaderLength;
        if (flowOwner)
        {
            // Zeek counts a datagram's data by the UDP length field, whatever the IP header says.
            r.FlowDataLength = udpLength > UdpHeaderLength ? (uint)(udpLength - UdpHeaderLength) : 0;
            r.Present |= FieldPresence.FlowUdp;
        }

        // Like tshark, try the lower port's protocol first, then the higher one's, then the heuristics.
        ushort low = Math.Min(sourcePort, destinationPort);
        ushort high = Math.Max(sourcePort, destinationPort);
        if (TryUdpPort(frame, payload, payloadEnd, low, ref r, depth, flowOwner, quoted))
        {
            return;
        }

        if (high != low && TryUdpPort(frame, payload, payloadEnd, high, ref r, depth, flowOwner, quoted))
        {
            return;
        }

        if (!quoted)
        {
            TryTeredoOnAnyPort(frame, payload, payloadEnd, udpLength, ref r, depth);
        }
    }

    private static bool TryUdpPort(ReadOnlySpan<byte> frame, int payload, int end, ushort port, ref PacketRecord r, int depth, bool flowOwner, bool quoted)
    {
        switch (port)
        {
            case PortDns:
            case PortMdns:
            case PortLlmnr:
                if ((r.Present & FieldPresence.Dns) == 0)
                {
                    ReadDns(frame, payload, end, DnsReader.Classify(port, port), ref r, flowOwner);
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

    private static void ReadDns(ReadOnlySpan<byte> frame, int offset, int end, DnsTransportKind kind, ref PacketRecord r, bool flowOwner)
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
        if (flowOwner && r.Dns.HeaderComplete)
        {
            r.Present |= FieldPresence.FlowDns;
        }

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

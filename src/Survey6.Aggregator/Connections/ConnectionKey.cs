using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Connections;

/// <summary>
/// The 5-tuple (and the encapsulation) a connection is keyed on, the same whichever way a packet travels: endpoint A is
/// the lower (address, port). ICMPv6 "ports" are Zeek's: the type, and for request/reply types the counterpart type
/// (echo 128/129, router 133/134, neighbour 135/136, MLD 130/131, node information 139/140, home agent 144/145); any other
/// message is one-way, keyed from its source with the code as second port, and never meets a reply.
/// </summary>
public readonly record struct ConnectionKey(
    Ipv6Address AddressA,
    ushort PortA,
    Ipv6Address AddressB,
    ushort PortB,
    byte Protocol,
    Encapsulation Encapsulation,
    bool OneWay)
{
    public const byte Tcp = PacketDissector.ProtocolTcp;
    public const byte Udp = PacketDissector.ProtocolUdp;
    public const byte Icmpv6 = PacketDissector.ProtocolIcmpv6;

    /// <summary>The key of <paramref name="p"/> and whether it travels from A to B.</summary>
    public static ConnectionKey Of(in ConnectionPacket p, out bool fromA)
    {
        ushort sourcePort = p.SourcePort;
        ushort destinationPort = p.DestinationPort;
        bool oneWay = false;
        if (p.Protocol == Icmpv6)
        {
            destinationPort = Icmpv6Counterpart(p.SourcePort, p.DestinationPort, out oneWay);
        }

        if (oneWay || Compare(p.Source, sourcePort, p.Destination, destinationPort) <= 0)
        {
            fromA = true;
            return new ConnectionKey(p.Source, sourcePort, p.Destination, destinationPort, p.Protocol, p.Encapsulation, oneWay);
        }

        fromA = false;
        return new ConnectionKey(p.Destination, destinationPort, p.Source, sourcePort, p.Protocol, p.Encapsulation, oneWay);
    }

    public string ProtocolName => Protocol switch
    {
        Tcp => "tcp",
        Udp => "udp",
        _ => "icmp",
    };

    private static int Compare(Ipv6Address a, ushort portA, Ipv6Address b, ushort portB)
    {
        int byAddress = a.CompareTo(b);
        return byAddress != 0 ? byAddress : portA.CompareTo(portB);
    }

    private static ushort Icmpv6Counterpart(ushort type, ushort code, out bool oneWay)
    {
        oneWay = false;
        switch (type)
        {
            case 128: return 129;
            case 129: return 128;
            case 130: return 131;
            case 131: return 130;
            case 133: return 134;
            case 134: return 133;
            case 135: return 136;
            case 136: return 135;
            case 139: return 140;
            case 140: return 139;
            case 144: return 145;
            case 145: return 144;
            default:
                oneWay = true;
                return code;
        }
    }
}

/// <summary>
/// One packet of a known connection, as a fragment keeps it for replay when it joins an earlier fragment
/// (<see cref="ConnectionFragment.Events"/>): everything <see cref="ConnectionPacket"/> holds except the key.
/// </summary>
public readonly record struct ConnectionEvent(
    long TimestampNs,
    uint Sequence,
    uint Acknowledgement,
    uint DataLength,
    uint IpBytes,
    ushort TcpFlags,
    ushort Window,
    bool FromA,
    bool Dns)
{
    public static ConnectionEvent Of(in ConnectionPacket p, bool fromA) =>
        new(p.TimestampNs, p.Sequence, p.Acknowledgement, p.DataLength, p.IpBytes, p.TcpFlags, p.Window, fromA, p.Dns);
}

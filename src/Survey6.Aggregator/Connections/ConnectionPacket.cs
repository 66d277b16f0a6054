using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Connections;

/// <summary>
/// What connection tracking reads from one packet: the flow view of a frame (docs/records.md), never a packet quoted
/// inside an ICMPv6 error. For ICMPv6, <see cref="SourcePort"/> is the type and <see cref="DestinationPort"/> the code.
/// </summary>
public readonly record struct ConnectionPacket(
    long TimestampNs,
    Ipv6Address Source,
    Ipv6Address Destination,
    byte Protocol,
    ushort SourcePort,
    ushort DestinationPort,
    ushort TcpFlags,
    uint Sequence,
    uint Acknowledgement,
    ushort Window,
    uint DataLength,
    uint IpBytes,
    Encapsulation Encapsulation,
    bool Dns)
{
    private const uint Ipv6HeaderLength = 40;

    /// <summary>
    /// The packet's flow view, when it is one connection tracking counts: a timestamped IPv6 packet whose own TCP (through
    /// the window field), UDP or ICMPv6 header was read. Everything else (IPv4 only, other protocols, cut headers) is not.
    /// </summary>
    public static bool TryFrom(in PacketRecord r, out ConnectionPacket packet)
    {
        packet = default;
        if (!r.HasTimestamp || !r.Has(FieldPresence.Flow))
        {
            return false;
        }

        var needed = r.FlowProtocol switch
        {
            ConnectionKey.Tcp => FieldPresence.FlowTcp,
            ConnectionKey.Udp => FieldPresence.FlowUdp,
            ConnectionKey.Icmpv6 => FieldPresence.FlowIcmpv6,
            _ => FieldPresence.None,
        };
        if (needed == FieldPresence.None || !r.Has(needed))
        {
            return false;
        }

        bool icmp = r.FlowProtocol == ConnectionKey.Icmpv6;
        packet = new ConnectionPacket(
            r.TimestampNanoseconds,
            r.FlowSource,
            r.FlowDestination,
            r.FlowProtocol,
            icmp ? r.FlowIcmpv6Type : r.FlowSourcePort,
            icmp ? r.FlowIcmpv6Code : r.FlowDestinationPort,
            r.FlowTcpFlags,
            r.FlowTcpSequence,
            r.FlowTcpAcknowledgement,
            r.FlowTcpWindow,
            r.FlowDataLength,
            r.FlowPayloadBytes + Ipv6HeaderLength,
            r.Encapsulation,
            r.Has(FieldPresence.FlowDns));
        return true;
    }
}

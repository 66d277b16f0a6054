using System.Buffers.Binary;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

// Link layers (Ethernet, 802.1Q, Linux cooked, loopback, PPP, PPPoE, raw IP) down to the first IP header.
public static partial class PacketDissector
{
    // EtherTypes.
    private const ushort EtherTypeIpv4 = 0x0800;
    private const ushort EtherTypeIpv6 = 0x86DD;
    private const ushort EtherTypeVlan = 0x8100;
    private const ushort EtherTypeQinQ = 0x88A8;
    private const ushort EtherTypeQinQOld = 0x9100;
    private const ushort EtherTypePppoeSession = 0x8864;
    private const ushort EtherTypeTransparentBridging = 0x6558;
    private const ushort EtherTypePpp = 0x880B;
    private const ushort EtherTypeErspanII = 0x88BE;
    private const ushort EtherTypeErspanIII = 0x22EB;

    // PPP protocol numbers.
    private const ushort PppIpv4 = 0x0021;
    private const ushort PppIpv6 = 0x0057;

    // Ethernet II: destination and source MAC, then the EtherType.
    private const int EthernetHeaderLength = 14;
    private const int EthernetTypeOffset = 12;

    // An 802.1Q/802.1ad tag after the outer EtherType: tag control (priority, DEI, 12-bit VLAN id), then the next EtherType.
    private const int VlanTagLength = 4;
    private const int VlanTagControlOffset = 0;
    private const int VlanEtherTypeOffset = 2;
    private const ushort VlanIdMask = 0x0FFF;

    // Linux cooked captures (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2): where the EtherType sits.
    private const int SllHeaderLength = 16;
    private const int SllProtocolOffset = 14;
    private const int Sll2HeaderLength = 20;
    private const int Sll2ProtocolOffset = 0;

    // LINKTYPE_NULL and LINKTYPE_LOOP: a 4-octet address family. IPv6's number differs between BSDs.
    private const int LoopbackHeaderLength = 4;
    private const uint LoopbackFamilyIpv4 = 2;
    private const uint LoopbackFamilyIpv6NetBsd = 24;  // NetBSD, OpenBSD, BSD/OS
    private const uint LoopbackFamilyIpv6FreeBsd = 28; // FreeBSD, DragonFly
    private const uint LoopbackFamilyIpv6Darwin = 30;  // macOS, iOS

    // PPPoE session header (RFC 2516 4): version and type, code, session id, length; then the PPP protocol.
    private const int PppoeHeaderLength = 6;

    // PPP (RFC 1661 2): the protocol field, 2 octets unless compressed to 1 (RFC 1661 6.5); HDLC-like framing
    // (RFC 1662 3.1) may put address 0xFF and control 0x03 in front.
    private const int PppProtocolLength = 2;
    private const byte HdlcAddress = 0xFF;
    private const byte HdlcControl = 0x03;
    private const int HdlcHeaderLength = 2;

    private static void DissectLoopback(ReadOnlySpan<byte> frame, LinkType linkType, ref PacketRecord r)
    {
        r.Push(Layer.Loopback);
        if (frame.Length < LoopbackHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        // NULL stores the address family in the capturing host's byte order, LOOP in network order.
        uint family = linkType == LinkType.Loop
            ? BinaryPrimitives.ReadUInt32BigEndian(frame)
            : BinaryPrimitives.ReadUInt32LittleEndian(frame);
        if (family > 0xFFFF)
        {
            family = BinaryPrimitives.ReverseEndianness(family);
        }

        switch (family)
        {
            case LoopbackFamilyIpv4:
                DissectIpv4(frame, LoopbackHeaderLength, frame.Length, ref r, 0, Encapsulation.Native);
                break;
            case LoopbackFamilyIpv6NetBsd:
            case LoopbackFamilyIpv6FreeBsd:
            case LoopbackFamilyIpv6Darwin:
                DissectIpv6(frame, LoopbackHeaderLength, frame.Length, ref r, 0, Encapsulation.Native, quoted: false);
                break;
        }
    }

    private static void DissectEthernet(ReadOnlySpan<byte> frame, int offset, ref PacketRecord r, int depth, Encapsulation via)
    {
        r.Push(Layer.Ethernet);
        if (frame.Length - offset < EthernetHeaderLength)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        var etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + EthernetTypeOffset)..]);
        DispatchEtherType(frame, offset + EthernetHeaderLength, etherType, ref r, depth, via);
    }

    private static void DispatchEtherType(ReadOnlySpan<byte> frame, int offset, ushort etherType, ref PacketRecord r, int depth, Encapsulation via)
    {
        for (int tags = 0; ; tags++)
        {
            switch (etherType)
            {
                case EtherTypeIpv6:
                    DissectIpv6(frame, offset, frame.Length, ref r, depth, via, quoted: false);
                    return;
                case EtherTypeIpv4:
                    DissectIpv4(frame, offset, frame.Length, ref r, depth, via);
                    return;
                case EtherTypePppoeSession:
                    r.Push(Layer.Pppoe);
                    if (frame.Length - offset < PppoeHeaderLength + PppProtocolLength)
                    {
                        r.Anomalies |= Anomaly.TruncatedLinkHeader;
                        return;
                    }

                    r.Push(Layer.Ppp);
                    DispatchPpp(frame, offset + PppoeHeaderLength + PppProtocolLength, BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + PppoeHeaderLength)..]), ref r, depth, via);
                    return;
                case EtherTypeVlan:
                case EtherTypeQinQ:
                case EtherTypeQinQOld:
                    if (tags >= MaxVlanTags)
                    {
                        r.Anomalies |= Anomaly.TooManyVlanTags;
                        return;
                    }

                    r.Push(Layer.Vlan);
                    if (frame.Length - offset < VlanTagLength)
                    {
                        r.Anomalies |= Anomaly.TruncatedLinkHeader;
                        return;
                    }

                    if (r.VlanCount++ == 0)
                    {
                        r.VlanId = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + VlanTagControlOffset)..]) & VlanIdMask);
                    }

                    etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + VlanEtherTypeOffset)..]);
                    offset += VlanTagLength;
                    continue;
                default:
                    return;
            }
        }
    }

    private static void DissectPpp(ReadOnlySpan<byte> frame, int offset, ref PacketRecord r, int depth, Encapsulation via)
    {
        r.Push(Layer.Ppp);
        var data = frame[offset..];

        if (data.Length >= HdlcHeaderLength && data[0] == HdlcAddress && data[1] == HdlcControl)
        {
            offset += HdlcHeaderLength;
            data = data[HdlcHeaderLength..];
        }

        if (data.Length < 1)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        // Protocol-field compression (RFC 1661 6.5): an odd first byte is a one-byte protocol.
        if ((data[0] & 1) != 0)
        {
            DispatchPpp(frame, offset + 1, data[0], ref r, depth, via);
            return;
        }

        if (data.Length < PppProtocolLength)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        DispatchPpp(frame, offset + PppProtocolLength, BinaryPrimitives.ReadUInt16BigEndian(data), ref r, depth, via);
    }

    private static void DispatchPpp(ReadOnlySpan<byte> frame, int offset, ushort protocol, ref PacketRecord r, int depth, Encapsulation via)
    {
        if (protocol == PppIpv6)
        {
            DissectIpv6(frame, offset, frame.Length, ref r, depth, via, quoted: false);
        }
        else if (protocol == PppIpv4)
        {
            DissectIpv4(frame, offset, frame.Length, ref r, depth, via);
        }
    }

    private static void DissectRawIp(ReadOnlySpan<byte> frame, int offset, ref PacketRecord r, int depth, Encapsulation via)
    {
        if (frame.Length - offset < 1)
        {
            r.Anomalies |= Anomaly.TruncatedLinkHeader;
            return;
        }

        switch (frame[offset] >> 4)
        {
            case 4:
                DissectIpv4(frame, offset, frame.Length, ref r, depth, via);
                break;
            case 6:
                DissectIpv6(frame, offset, frame.Length, ref r, depth, via, quoted: false);
                break;
            default:
                r.Anomalies |= Anomaly.BadIpVersion;
                break;
        }
    }
}

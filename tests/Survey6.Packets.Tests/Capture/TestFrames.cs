using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Tests.Capture;

/// <summary>Hand-built, checksum-correct IPv6/UDP frames, so that dissectors raise no expert info on them.</summary>
internal static class TestFrames
{
    public const int EthernetHeaderLength = 14;
    public const int Ipv6HeaderLength = 40;
    public const int UdpHeaderLength = 8;

    public static byte[] EthernetIpv6Udp(Ipv6Address source, Ipv6Address destination, ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[EthernetHeaderLength + Ipv6HeaderLength + UdpHeaderLength + payload.Length];
        // Locally administered unicast MACs.
        byte[] dstMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
        byte[] srcMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
        dstMac.CopyTo(frame, 0);
        srcMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x86DD);
        WriteIpv6Udp(frame.AsSpan(EthernetHeaderLength), source, destination, sourcePort, destinationPort, payload);
        return frame;
    }

    public static byte[] RawIpv6Udp(Ipv6Address source, Ipv6Address destination, ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        var packet = new byte[Ipv6HeaderLength + UdpHeaderLength + payload.Length];
        WriteIpv6Udp(packet, source, destination, sourcePort, destinationPort, payload);
        return packet;
    }

    private static void WriteIpv6Udp(Span<byte> p, Ipv6Address source, Ipv6Address destination, ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        var udpLength = (ushort)(UdpHeaderLength + payload.Length);
        BinaryPrimitives.WriteUInt32BigEndian(p, 0x6000_0000); // version 6, traffic class 0, flow label 0
        BinaryPrimitives.WriteUInt16BigEndian(p[4..], udpLength);
        p[6] = 17; // next header: UDP
        p[7] = 64; // hop limit
        source.Write(p[8..]);
        destination.Write(p[24..]);

        var udp = p[Ipv6HeaderLength..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], udpLength);
        payload.CopyTo(udp[UdpHeaderLength..]);

        // RFC 8200 8.1: the checksum covers a pseudo-header of addresses, upper-layer length and next header.
        ulong sum = 0;
        for (var i = 8; i < 40; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(p[i..]);
        }

        sum += udpLength;
        sum += 17;
        var segment = udp[..udpLength];
        for (var i = 0; i + 1 < segment.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(segment[i..]);
        }

        if ((segment.Length & 1) != 0)
        {
            sum += (ulong)segment[^1] << 8;
        }

        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        var checksum = (ushort)~sum;
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], checksum == 0 ? (ushort)0xFFFF : checksum);
    }
}

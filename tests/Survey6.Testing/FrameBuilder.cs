using System.Buffers.Binary;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;

namespace Survey6.Testing;

/// <summary>Builds frames layer by layer, innermost first, for hand-made dissector tests.</summary>
public static class FrameBuilder
{
    public static readonly Ipv6Address Source = Ipv6Address.Parse("2001:db8::1");
    public static readonly Ipv6Address Destination = Ipv6Address.Parse("2001:db8::2");

    public static byte[] Ethernet(ushort etherType, byte[] payload, params ushort[] vlanTags)
    {
        var frame = new byte[14 + (4 * vlanTags.Length) + payload.Length];
        frame.AsSpan(0, 6).Fill(0x02);
        frame.AsSpan(6, 6).Fill(0x04);
        int offset = 12;
        foreach (var tag in vlanTags)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(offset), 0x8100);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(offset + 2), tag);
            offset += 4;
        }

        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(offset), etherType);
        payload.CopyTo(frame.AsSpan(offset + 2));
        return frame;
    }

    public static byte[] Ipv6(byte nextHeader, byte[] payload, Ipv6Address? source = null, Ipv6Address? destination = null, byte hopLimit = 64, byte trafficClass = 0, uint flowLabel = 0, int? payloadLength = null)
    {
        var packet = new byte[40 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(packet, (6u << 28) | ((uint)trafficClass << 20) | (flowLabel & 0xFFFFF));
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(payloadLength ?? payload.Length));
        packet[6] = nextHeader;
        packet[7] = hopLimit;
        (source ?? Source).Write(packet.AsSpan(8));
        (destination ?? Destination).Write(packet.AsSpan(24));
        payload.CopyTo(packet.AsSpan(40));
        return packet;
    }

    public static byte[] Ipv4(byte protocol, byte[] payload, uint source = 0xC0000201, uint destination = 0xC0000202, ushort fragmentOffset = 0, bool moreFragments = false)
    {
        var packet = new byte[20 + payload.Length];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), (ushort)((moreFragments ? 0x2000 : 0) | fragmentOffset));
        packet[8] = 64;
        packet[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(12), source);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(16), destination);
        payload.CopyTo(packet.AsSpan(20));
        return packet;
    }

    /// <summary>A Hop-by-Hop, Destination Options or Routing header padded to 8 octets.</summary>
    public static byte[] Extension(byte nextHeader, byte[] payload, int units = 0, byte routingType = 0, byte segmentsLeft = 0)
    {
        var header = new byte[((units + 1) * 8) + payload.Length];
        header[0] = nextHeader;
        header[1] = (byte)units;
        header[2] = routingType;
        header[3] = segmentsLeft;
        payload.CopyTo(header.AsSpan((units + 1) * 8));
        return header;
    }

    public static byte[] Fragment(byte nextHeader, byte[] payload, ushort offsetUnits, bool more, uint id)
    {
        var header = new byte[8 + payload.Length];
        header[0] = nextHeader;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)((offsetUnits << 3) | (more ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), id);
        payload.CopyTo(header.AsSpan(8));
        return header;
    }

    public static byte[] Udp(ushort sourcePort, ushort destinationPort, byte[] payload)
    {
        var datagram = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(datagram, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), (ushort)datagram.Length);
        payload.CopyTo(datagram.AsSpan(8));
        return datagram;
    }

    public static byte[] Tcp(ushort sourcePort, ushort destinationPort, ushort flags, byte[]? payload = null)
    {
        payload ??= [];
        var segment = new byte[20 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(12), (ushort)((5 << 12) | flags));
        payload.CopyTo(segment.AsSpan(20));
        return segment;
    }

    public static byte[] Icmpv6(byte type, byte code, byte[] body)
    {
        var message = new byte[4 + body.Length];
        message[0] = type;
        message[1] = code;
        body.CopyTo(message.AsSpan(4));
        return message;
    }

    /// <summary>A DNS query for one name (labels separated by dots) and type.</summary>
    public static byte[] DnsQuery(string name, ushort type, ushort id = 0x1234)
    {
        var bytes = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        AppendName(bytes, name);
        bytes.AddRange([(byte)(type >> 8), (byte)type, 0, 1]);
        return [.. bytes];
    }

    /// <summary>A DNS response to <paramref name="name"/> with the given AAAA answers, each naming the question by pointer.</summary>
    public static byte[] DnsAaaaResponse(string name, byte rcode, params Ipv6Address[] answers)
    {
        var bytes = new List<byte> { 0xAB, 0xCD, 0x81, (byte)(0x80 | rcode), 0, 1, 0, (byte)answers.Length, 0, 0, 0, 0 };
        AppendName(bytes, name);
        bytes.AddRange([0, 28, 0, 1]);
        foreach (var answer in answers)
        {
            bytes.AddRange([0xC0, 12, 0, 28, 0, 1, 0, 0, 0x0E, 0x10, 0, 16]);
            var raw = new byte[16];
            answer.Write(raw);
            bytes.AddRange(raw);
        }

        return [.. bytes];
    }

    private static void AppendName(List<byte> bytes, string name)
    {
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }

        bytes.Add(0);
    }

    /// <summary>
    /// Bytes the dissector allocates over <paramref name="iterations"/> frames (taken in turn), after a warm-up: the
    /// fewest of up to three passes (<see cref="Allocations"/>).
    /// </summary>
    public static long AllocatedWhileDissecting(byte[][] frames, int iterations = 100_000, int warmUp = 200)
    {
        var r = new PacketRecord();
        for (int i = 0; i < warmUp; i++)
        {
            r.Reset();
            PacketDissector.Dissect(frames[i % frames.Length], LinkType.Ethernet, ref r);
        }

        return Allocations.Fewest(() =>
        {
            for (int i = 0; i < iterations; i++)
            {
                r.Reset();
                PacketDissector.Dissect(frames[i % frames.Length], LinkType.Ethernet, ref r);
            }
        });
    }
}

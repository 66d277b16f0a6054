using System.Buffers.Binary;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// Writes a synthetic pcapng with a plausible mix for an IPv6 vantage point: mostly TCP and QUIC between a few
/// thousand clients and a few hundred servers, DNS with AAAA answers, neighbour discovery and router adverts,
/// some 6in4 and Teredo, some IPv4. Seeded, so every run measures the same bytes.
/// </summary>
public static class TrafficGenerator
{
    /// <param name="flows">
    /// False: every packet between a random client and server (no locality: the worst case for interning).
    /// True: packets belong to 5 000 flows whose popularity falls off steeply, as on a real link.
    /// </param>
    public static void Write(string path, int frames, bool flows = false, int seed = 6)
    {
        var random = new Random(seed);
        var clients = Enumerable.Range(0, 20_000).Select(i => Address(0x2001_0db8_0000_0000UL | ((ulong)(uint)(i % 200) << 16), random)).ToArray();
        var servers = Enumerable.Range(0, 500).Select(i => Address(0x2a00_1450_4000_0000UL | ((ulong)(uint)(i % 50) << 16), random)).ToArray();
        var names = Enumerable.Range(0, 5_000).Select(i => $"host{i}.example{i % 97}.org").ToArray();
        var routers = Enumerable.Range(0, 20).Select(i => new Ipv6Address(0xfe80_0000_0000_0000UL, 0x0200_5eff_fe00_0000UL | (uint)i)).ToArray();

        using var stream = File.Create(path);
        using var writer = new PcapngWriter(stream, new PcapngSectionInfo { UserApplication = "survey6 bench" });
        writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = "eth0" });
        var buffer = new byte[2048];
        long time = 1_714_557_600_000_000_000L; // 2024-05-01T10:00:00Z
        for (int n = 0; n < frames; n++)
        {
            time += random.Next(1_000, 200_000);
            Ipv6Address client, server;
            if (flows)
            {
                // Flow k is chosen with probability falling as k grows (cube of a uniform draw).
                int k = (int)(5_000 * Math.Pow(random.NextDouble(), 3));
                client = clients[(k * 7919) % clients.Length];
                server = servers[(k * 104729) % servers.Length];
            }
            else
            {
                client = clients[random.Next(clients.Length)];
                server = servers[random.Next(servers.Length)];
            }
            bool up = random.Next(2) == 0;
            var (src, dst) = up ? (client, server) : (server, client);
            int kind = random.Next(100);
            int length = kind switch
            {
                < 55 => Tcp(buffer, src, dst, up, random),
                < 70 => Quic(buffer, src, dst, up, random),
                < 80 => Dns(buffer, client, servers[random.Next(8)], names[random.Next(names.Length)], random),
                < 88 => Nd(buffer, client, random),
                < 89 => Ra(buffer, routers[random.Next(routers.Length)], random),
                < 94 => SixInFour(buffer, src, dst, random),
                < 96 => Teredo(buffer, dst, random),
                _ => Ipv4(buffer, random),
            };
            writer.WritePacket(0, time, buffer.AsSpan(0, length), (uint)length);
        }
    }

    private static Ipv6Address Address(ulong prefix, Random random) => new(prefix, (ulong)random.NextInt64());

    private static int Ethernet(Span<byte> b, ushort etherType)
    {
        b[..6].Fill(0x02);
        b.Slice(6, 6).Fill(0x04);
        BinaryPrimitives.WriteUInt16BigEndian(b[12..], etherType);
        return 14;
    }

    private static int Ipv6Header(Span<byte> b, Ipv6Address src, Ipv6Address dst, byte next, int payload)
    {
        BinaryPrimitives.WriteUInt32BigEndian(b, 0x6000_0000);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)payload);
        b[6] = next;
        b[7] = 64;
        src.Write(b[8..]);
        dst.Write(b[24..]);
        return 40;
    }

    private static int Tcp(byte[] buffer, Ipv6Address src, Ipv6Address dst, bool up, Random random)
    {
        int payload = random.Next(10) < 4 ? 0 : random.Next(1, 1400);
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x86DD);
        at += Ipv6Header(b[at..], src, dst, 6, 20 + payload);
        ushort clientPort = (ushort)(32768 + (src.Low % 28000));
        BinaryPrimitives.WriteUInt16BigEndian(b[at..], up ? clientPort : (ushort)443);
        BinaryPrimitives.WriteUInt16BigEndian(b[(at + 2)..], up ? (ushort)443 : clientPort);
        BinaryPrimitives.WriteUInt16BigEndian(b[(at + 12)..], (ushort)((5 << 12) | (payload == 0 ? 0x10 : 0x18)));
        b.Slice(at + 4, 8).Clear();
        b.Slice(at + 14, 6).Clear();
        at += 20;
        b.Slice(at, payload).Clear();
        return at + payload;
    }

    private static int Quic(byte[] buffer, Ipv6Address src, Ipv6Address dst, bool up, Random random)
    {
        int payload = random.Next(20, 1300);
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x86DD);
        at += Ipv6Header(b[at..], src, dst, 17, 8 + payload);
        at += Udp(b[at..], up ? (ushort)51000 : (ushort)443, up ? (ushort)443 : (ushort)51000, payload);
        b.Slice(at, payload).Clear();
        return at + payload;
    }

    private static int Udp(Span<byte> b, ushort sport, ushort dport, int payload)
    {
        BinaryPrimitives.WriteUInt16BigEndian(b, sport);
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], dport);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)(8 + payload));
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], 0);
        return 8;
    }

    private static int Dns(byte[] buffer, Ipv6Address client, Ipv6Address server, string name, Random random)
    {
        bool response = random.Next(2) == 0;
        var message = new List<byte> { 0x12, 0x34, (byte)(response ? 0x81 : 0x01), (byte)(response ? 0x80 : 0x00), 0, 1, 0, (byte)(response ? 2 : 0), 0, 0, 0, 0 };
        foreach (var label in name.Split('.'))
        {
            message.Add((byte)label.Length);
            message.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        message.AddRange([0, 0, 28, 0, 1]);
        if (response)
        {
            for (int i = 0; i < 2; i++)
            {
                message.AddRange([0xC0, 12, 0, 28, 0, 1, 0, 0, 0x0E, 0x10, 0, 16, 0x20, 0x01, 0x0d, 0xb8]);
                for (int k = 0; k < 12; k++)
                    message.Add((byte)(name.Length * (k + 1) + i));
            }
        }
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x86DD);
        var (src, dst) = response ? (server, client) : (client, server);
        at += Ipv6Header(b[at..], src, dst, 17, 8 + message.Count);
        at += Udp(b[at..], response ? (ushort)53 : (ushort)40000, response ? (ushort)40000 : (ushort)53, message.Count);
        message.ToArray().CopyTo(b[at..]);
        return at + message.Count;
    }

    private static int Nd(byte[] buffer, Ipv6Address host, Random random)
    {
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x86DD);
        var linkLocal = new Ipv6Address(0xfe80_0000_0000_0000UL, host.Low);
        var solicited = new Ipv6Address(0xff02_0000_0000_0000UL, 0x0000_0001_ff00_0000UL | (host.Low & 0xFFFFFF));
        bool solicitation = random.Next(2) == 0;
        at += Ipv6Header(b[at..], linkLocal, solicitation ? solicited : linkLocal, 58, 24);
        b[at] = (byte)(solicitation ? 135 : 136);
        b.Slice(at + 1, 7).Clear();
        host.Write(b[(at + 8)..]);
        return at + 24;
    }

    private static int Ra(byte[] buffer, Ipv6Address router, Random random)
    {
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x86DD);
        at += Ipv6Header(b[at..], router, new Ipv6Address(0xff02_0000_0000_0000UL, 1), 58, 16 + 32);
        b[at] = 134;
        b.Slice(at + 1, 15).Clear();
        b[at + 4] = 64;
        BinaryPrimitives.WriteUInt16BigEndian(b[(at + 6)..], 1800);
        int o = at + 16;
        b[o] = 3;
        b[o + 1] = 4;
        b[o + 2] = 64;
        b[o + 3] = 0xC0;
        b.Slice(o + 4, 12).Clear();
        new Ipv6Address(0x2001_0db8_0000_0000UL | ((ulong)(router.Low & 0xFF) << 16), 0).Write(b[(o + 16)..]);
        _ = random;
        return o + 32;
    }

    private static int SixInFour(byte[] buffer, Ipv6Address src, Ipv6Address dst, Random random)
    {
        int payload = random.Next(0, 600);
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x0800);
        at += Ipv4Header(b[at..], 41, 40 + 20 + payload, 0xC6336401, 0xC0586301);
        at += Ipv6Header(b[at..], src, dst, 6, 20 + payload);
        BinaryPrimitives.WriteUInt16BigEndian(b[at..], 50000);
        BinaryPrimitives.WriteUInt16BigEndian(b[(at + 2)..], 80);
        b.Slice(at + 4, 8).Clear();
        BinaryPrimitives.WriteUInt16BigEndian(b[(at + 12)..], (5 << 12) | 0x10);
        b.Slice(at + 14, 6).Clear();
        at += 20;
        b.Slice(at, payload).Clear();
        return at + payload;
    }

    private static int Teredo(byte[] buffer, Ipv6Address server, Random random)
    {
        var teredo = new Ipv6Address(0x2001_0000_4136_e378UL, 0x8000_63bf_3fff_fdd2UL ^ (uint)random.Next(1000));
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x0800);
        at += Ipv4Header(b[at..], 17, 8 + 40 + 8, 0xC0000201, 0x41365E01);
        at += Udp(b[at..], 3544, 40001, 40 + 8);
        at += Ipv6Header(b[at..], teredo, server, 58, 8);
        b[at] = 128;
        b.Slice(at + 1, 7).Clear();
        return at + 8;
    }

    private static int Ipv4(byte[] buffer, Random random)
    {
        int payload = random.Next(0, 1000);
        var b = buffer.AsSpan();
        int at = Ethernet(b, 0x0800);
        at += Ipv4Header(b[at..], 17, 8 + payload, (uint)random.Next(), 0x08080808);
        at += Udp(b[at..], 5000, 53, payload);
        b.Slice(at, payload).Clear();
        return at + payload;
    }

    private static int Ipv4Header(Span<byte> b, byte protocol, int payload, uint src, uint dst)
    {
        b[..20].Clear();
        b[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], (ushort)(20 + payload));
        b[8] = 64;
        b[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], src);
        BinaryPrimitives.WriteUInt32BigEndian(b[16..], dst);
        return 20;
    }
}

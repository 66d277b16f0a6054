namespace Survey6.CaptureGen;

/// <summary>
/// The simulated site: a LAN with a router (seen through a VRRP gateway MAC), local hosts in
/// 2001:db8:1000::/48 and fd5e:6a00::/48, and remote peers elsewhere in 2001:db8::/32. Interface
/// identifiers mix EUI-64, random (RFC 7217/8981), low-byte and embedded-IPv4 forms, as surveys find them.
/// </summary>
internal sealed class Network
{
    public const ulong GatewayMac = 0x00_00_5e_00_02_01;
    public const ulong RouterMac = 0x00_1b_21_3a_10_01;

    // Vendor OUIs so EUI-64 identifiers look like the ones surveys attribute to real hardware.
    private static readonly ulong[] Ouis = [0x001b21, 0x3c22fb, 0xb827eb, 0x005056, 0x525400, 0xf4f5d8, 0x001132, 0xdca632, 0x000c29, 0xa4bb6d];
    private static readonly ushort[] LocalSubnets = [0x0001, 0x0002, 0x0010, 0x0011, 0x0020, 0x0100, 0x0101, 0x0a00, 0x00ff, 0xbeef, 0x0042, 0x1234];
    private static readonly ushort[] UlaSubnets = [0x0000, 0x0001, 0x0053, 0x00aa];
    private static readonly int[] LowByteIids = [0x1, 0x2, 0x3, 0x5, 0xa, 0x10, 0x11, 0x20, 0x53, 0x80, 0x100, 0x443, 0x1000, 0xcafe];

    public Network(Rng rng)
    {
        Prefixes = new ulong[LocalSubnets.Length + UlaSubnets.Length];
        for (var i = 0; i < LocalSubnets.Length; i++)
        {
            Prefixes[i] = 0x2001_0db8_1000_0000UL | LocalSubnets[i];
        }

        for (var i = 0; i < UlaSubnets.Length; i++)
        {
            Prefixes[LocalSubnets.Length + i] = 0xfd5e_6a00_0000_0000UL | UlaSubnets[i];
        }

        Clients = new Endpoint[3000];
        for (var i = 0; i < Clients.Length; i++)
        {
            // Global-unicast prefixes dominate; ULA only on a minority of hosts.
            var prefix = rng.Chance(0.85) ? Prefixes[rng.Below(LocalSubnets.Length)] : Prefixes[LocalSubnets.Length + rng.Below(UlaSubnets.Length)];
            Clients[i] = LocalHost(rng, prefix, rng.Below(100) switch
            {
                < 30 => IidKind.Eui64,
                < 80 => IidKind.Random,
                < 95 => IidKind.LowByte,
                _ => IidKind.EmbeddedIpv4,
            });
        }

        LocalServers = new Endpoint[48];
        for (var i = 0; i < LocalServers.Length; i++)
        {
            LocalServers[i] = LocalHost(rng, rng.Pick(Prefixes), rng.Chance(0.8) ? IidKind.LowByte : IidKind.Eui64);
        }

        Remote = new Endpoint[1500];
        for (var i = 0; i < Remote.Length; i++)
        {
            var prefix = 0x2001_0db8_0000_0000UL | ((ulong)rng.Range(0x2000, 0xffff) << 16) | (uint)(rng.Chance(0.6) ? 0 : rng.Below(0x100));
            Remote[i] = RemoteHost(rng, prefix, rng.Below(100) switch
            {
                < 50 => IidKind.LowByte,
                < 75 => IidKind.Random,
                < 88 => IidKind.Eui64,
                _ => IidKind.EmbeddedIpv4,
            });
        }

        Scanners = new Endpoint[128];
        for (var i = 0; i < Scanners.Length; i++)
        {
            var prefix = 0x2001_0db8_0000_0000UL | ((ulong)rng.Range(0x2000, 0xffff) << 16) | rng.U16();
            Scanners[i] = RemoteHost(rng, prefix, rng.Chance(0.7) ? IidKind.Random : IidKind.LowByte);
        }

        RemoteRouters = new Endpoint[256];
        for (var i = 0; i < RemoteRouters.Length; i++)
        {
            var prefix = 0x2001_0db8_0000_0000UL | ((ulong)rng.Range(0x2000, 0xffff) << 16);
            RemoteRouters[i] = RemoteHost(rng, prefix, IidKind.LowByte);
        }

        Resolvers =
        [
            new Endpoint(new V6(0x2001_0db8_1000_0053UL, 0x53), 0x52_54_00_53_00_01, true, 64, Eui64(0x52_54_00_53_00_01)),
            new Endpoint(new V6(0xfd5e_6a00_0000_0053UL, 0x53), 0x52_54_00_53_00_02, true, 64, Eui64(0x52_54_00_53_00_02)),
            new Endpoint(new V6(0x2001_0db8_4860_4860UL, 0x8888), GatewayMac, false, 56, 0),
        ];

        Router = new Endpoint(new V6(Prefixes[0], 1), RouterMac, true, 255, 1);

        Clients4 = new Endpoint4[1024];
        for (var i = 0; i < Clients4.Length; i++)
        {
            var mac = rng.Chance(0.5) ? Clients[i].Mac : MacFrom(rng);
            // Sequential so that no two MACs ever claim one IPv4 address in ARP.
            Clients4[i] = new Endpoint4(0x0a14_0000u | (uint)((i / 250) << 8) | (uint)((i % 250) + 2), mac, true, rng.Chance(0.8) ? (byte)64 : (byte)128);
        }

        Remote4 = new Endpoint4[1024];
        uint[] docNets = [0xc000_0200, 0xc633_6400, 0xcb00_7100];
        for (var i = 0; i < Remote4.Length; i++)
        {
            Remote4[i] = new Endpoint4(rng.Pick(docNets) | (uint)rng.Range(1, 254), GatewayMac, false, (byte)rng.Range(40, 60));
        }

        Resolvers4 = [new Endpoint4(0x0a14_0035, 0x52_54_00_53_00_01, true, 64), new Endpoint4(0xc000_0235, GatewayMac, false, 56)];
    }

    private enum IidKind
    {
        Eui64,
        Random,
        LowByte,
        EmbeddedIpv4,
    }

    /// <summary>Local /64 prefixes (high halves); the router is ::1 in each.</summary>
    public ulong[] Prefixes { get; }

    public Endpoint[] Clients { get; }

    public Endpoint[] LocalServers { get; }

    public Endpoint[] Remote { get; }

    public Endpoint[] Scanners { get; }

    public Endpoint[] RemoteRouters { get; }

    public Endpoint[] Resolvers { get; }

    public Endpoint Router { get; }

    public Endpoint4[] Clients4 { get; }

    public Endpoint4[] Remote4 { get; }

    public Endpoint4[] Resolvers4 { get; }

    public static ulong Eui64(ulong mac) => (((mac >> 24) ^ 0x02_0000UL) << 40) | (0xfffeUL << 24) | (mac & 0xff_ffff);

    private static ulong MacFrom(Rng rng) => (rng.Pick(Ouis) << 24) | (rng.U32() & 0xff_ffff);

    private static ulong Iid(Rng rng, IidKind kind, ulong mac) => kind switch
    {
        IidKind.Eui64 => Eui64(mac),
        IidKind.Random => rng.Next() & ~0x0200_0000_0000_0000UL,
        IidKind.LowByte => rng.Chance(0.6) ? (ulong)rng.Pick(LowByteIids) : (ulong)rng.Range(1, 0xff),
        _ => rng.Chance(0.5) ? 0xc000_0200UL | (uint)rng.Range(1, 254) : 0x0192_0000_0002_0000UL | DecimalLooking(rng.Range(1, 254)),
    };

    /// <summary>The "::192:0:2:15" habit: an IPv4 octet spelled in hex digits so it reads as decimal.</summary>
    private static ulong DecimalLooking(int octet) => (ulong)(((octet / 100) << 8) | (((octet / 10) % 10) << 4) | (octet % 10));

    private static Endpoint LocalHost(Rng rng, ulong prefix, IidKind kind)
    {
        var mac = MacFrom(rng);
        var iid = Iid(rng, kind, mac);

        // Hosts with stable privacy addresses still form their link-local from the MAC about half the time.
        var ll = kind == IidKind.Random && rng.Chance(0.5) ? rng.Next() & ~0x0200_0000_0000_0000UL : Eui64(mac);
        var hlim = rng.Below(10) switch
        {
            < 7 => 64,
            < 9 => 128,
            _ => 255,
        };
        return new Endpoint(new V6(prefix, iid), mac, true, (byte)hlim, ll);
    }

    private static Endpoint RemoteHost(Rng rng, ulong prefix, IidKind kind)
    {
        var mac = MacFrom(rng);
        var initial = rng.Below(10) < 7 ? 64 : rng.Chance(0.5) ? 128 : 255;
        return new Endpoint(new V6(prefix, Iid(rng, kind, mac)), GatewayMac, false, (byte)(initial - rng.Range(6, 22)), 0);
    }
}

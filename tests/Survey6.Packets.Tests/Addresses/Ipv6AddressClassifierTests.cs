using CsCheck;
using Survey6.Packets.Addresses;
using T = Survey6.Packets.Addresses.Ipv6AddressType;
using I = Survey6.Packets.Addresses.IidClass;

namespace Survey6.Packets.Tests.Addresses;

public class Ipv6AddressClassifierTests
{
    // Expected details are "key=value" words; any decoded field not listed must be absent, so each row also
    // checks that nothing extra was reported. Keys: v4, mac, universal, local, port, rev, scope, server, client, tport.
    [Theory]
    // Unspecified and loopback (addr6 calls the loopback IID low-byte).
    [InlineData("::", T.Unspecified, I.None, "")]
    [InlineData("::1", T.Loopback, I.LowByte, "")]
    // IPv4-mapped and -compatible: the IID is the IPv4 address, even when it looks like ff:fe.
    [InlineData("::ffff:192.0.2.1", T.Ipv4Mapped, I.EmbeddedIpv4_32, "v4=192.0.2.1")]
    [InlineData("::ffff:0.0.0.0", T.Ipv4Mapped, I.EmbeddedIpv4_32, "v4=0.0.0.0")]
    [InlineData("::ffff:254.1.2.3", T.Ipv4Mapped, I.EmbeddedIpv4_32, "v4=254.1.2.3")]
    [InlineData("::192.0.2.1", T.Ipv4Compatible, I.EmbeddedIpv4_32, "v4=192.0.2.1")]
    [InlineData("::0.0.0.2", T.Ipv4Compatible, I.EmbeddedIpv4_32, "v4=0.0.0.2")]
    // Link-local, including both ends of fe80::/10.
    [InlineData("fe80::21b:21ff:fe3a:1234", T.LinkLocal, I.Eui64, "mac=00:1b:21:3a:12:34 universal")]
    [InlineData("fe80::42:acff:fe11:2", T.LinkLocal, I.Eui64, "mac=02:42:ac:11:00:02 local")]
    [InlineData("fe80::1", T.LinkLocal, I.LowByte, "")]
    [InlineData("fe80::200:5efe:c000:201", T.LinkLocal, I.Isatap, "v4=192.0.2.1")]
    [InlineData("fe80::5efe:a00:1", T.LinkLocal, I.Isatap, "v4=10.0.0.1")]
    [InlineData("febf:ffff::1", T.LinkLocal, I.LowByte, "")]
    // Site-local (deprecated) and unique-local.
    [InlineData("fec0::1", T.SiteLocal, I.LowByte, "")]
    [InlineData("feff::a1b2:c3d4:e5f6:789a", T.SiteLocal, I.Randomized, "")]
    [InlineData("fd00::1", T.UniqueLocal, I.LowByte, "")]
    [InlineData("fc00::443", T.UniqueLocal, I.EmbeddedPort, "port=443")]
    [InlineData("fdab:cdef:1234::1:2:3:4", T.UniqueLocal, I.EmbeddedIpv4_64, "v4=1.2.3.4")]
    [InlineData("fd00::f00:0:0:1", T.UniqueLocal, I.BytePattern, "")]
    // Multicast: scope is the low nibble of the first byte pair; no IID.
    [InlineData("ff00::1", T.Multicast, I.None, "scope=Reserved0")]
    [InlineData("ff01::1", T.Multicast, I.None, "scope=InterfaceLocal")]
    [InlineData("ff02::1", T.Multicast, I.None, "scope=LinkLocal")]
    [InlineData("ff02::1:ff3a:1234", T.Multicast, I.None, "scope=LinkLocal")]
    [InlineData("ff03::fc", T.Multicast, I.None, "scope=RealmLocal")]
    [InlineData("ff04::1:3", T.Multicast, I.None, "scope=AdminLocal")]
    [InlineData("ff05::1:3", T.Multicast, I.None, "scope=SiteLocal")]
    [InlineData("ff06::1", T.Multicast, I.None, "scope=6")]
    [InlineData("ff08::101", T.Multicast, I.None, "scope=OrganizationLocal")]
    [InlineData("ff0e::101", T.Multicast, I.None, "scope=Global")]
    [InlineData("ff0f::1", T.Multicast, I.None, "scope=ReservedF")]
    [InlineData("ff12::1234", T.Multicast, I.None, "scope=LinkLocal")]
    [InlineData("ff3e:40:2001:db8::1234", T.Multicast, I.None, "scope=Global")]
    // 6to4: the prefix's IPv4 wins over any IPv4 the IID carries.
    [InlineData("2002:c000:0204::1", T.SixToFour, I.LowByte, "v4=192.0.2.4")]
    [InlineData("2002:c000:204::c000:205", T.SixToFour, I.EmbeddedIpv4_32, "v4=192.0.2.4")]
    [InlineData("2002:cb00:7101:1:21b:21ff:fe3a:1234", T.SixToFour, I.Eui64, "v4=203.0.113.1 mac=00:1b:21:3a:12:34 universal")]
    // Teredo: RFC 4380 section 4 example, the nmap address-info example, and the legacy prefix.
    [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2", T.Teredo, I.Teredo, "v4=192.0.2.45 server=65.54.227.120 client=192.0.2.45 tport=40000")]
    [InlineData("2001:0:506:708:282a:3d75:fefd:fcfb", T.Teredo, I.Teredo, "v4=1.2.3.4 server=5.6.7.8 client=1.2.3.4 tport=49802")]
    [InlineData("3ffe:831f:4136:e378:8000:63bf:3fff:fdd2", T.Teredo, I.Teredo, "v4=192.0.2.45 server=65.54.227.120 client=192.0.2.45 tport=40000")]
    // Documentation prefixes (RFC 3849, RFC 9637), used to exercise every IID rule.
    [InlineData("2001:db8::1", T.Documentation, I.LowByte, "")]
    [InlineData("2001:db8::2:1", T.Documentation, I.LowByte, "")]
    [InlineData("2001:db8::100", T.Documentation, I.LowByte, "")]
    [InlineData("2001:db8::", T.Documentation, I.EmbeddedIpv4_64, "v4=0.0.0.0")]
    [InlineData("2001:db8:1:2:3:4:5:6", T.Documentation, I.EmbeddedIpv4_64, "v4=3.4.5.6")]
    [InlineData("2001:db8::192:168:1:10", T.Documentation, I.EmbeddedIpv4_64, "v4=192.168.1.10")]
    [InlineData("2001:db8::c0a8:10a", T.Documentation, I.EmbeddedIpv4_32, "v4=192.168.1.10")]
    [InlineData("2001:db8::80", T.Documentation, I.EmbeddedPort, "port=80")]
    [InlineData("2001:db8::50", T.Documentation, I.EmbeddedPort, "port=80")]
    [InlineData("2001:db8::53", T.Documentation, I.EmbeddedPort, "port=53")]
    [InlineData("2001:db8::35", T.Documentation, I.EmbeddedPort, "port=53")]
    [InlineData("2001:db8::1bb", T.Documentation, I.EmbeddedPort, "port=443")]
    [InlineData("2001:db8::8080", T.Documentation, I.EmbeddedPort, "port=8080")]
    [InlineData("2001:db8::1:80", T.Documentation, I.EmbeddedPort, "port=80")]
    [InlineData("2001:db8::80:1", T.Documentation, I.EmbeddedPort, "port=80 rev")]
    [InlineData("2001:db8::443:0", T.Documentation, I.EmbeddedPort, "port=443 rev")]
    [InlineData("2001:db8::443:1", T.Documentation, I.EmbeddedIpv4_32, "v4=4.67.0.1")]
    [InlineData("2001:db8::200:5efe:c000:201", T.Documentation, I.Isatap, "v4=192.0.2.1")]
    [InlineData("2001:db8::21b:21ff:fe3a:1234", T.Documentation, I.Eui64, "mac=00:1b:21:3a:12:34 universal")]
    [InlineData("2001:db8::1a0:1:2:3", T.Documentation, I.BytePattern, "")]
    [InlineData("2001:db8::a:b:c:d", T.Documentation, I.BytePattern, "")]
    [InlineData("2001:db8::dead:0:beef", T.Documentation, I.BytePattern, "")]
    [InlineData("2001:db8:85a3::8a2e:370:7334", T.Documentation, I.Randomized, "")]
    [InlineData("2001:db8::ffff:ffff:ffff:ffff", T.Documentation, I.Randomized, "")]
    [InlineData("3fff::1", T.Documentation, I.LowByte, "")]
    [InlineData("3fff:fff:ffff::1", T.Documentation, I.LowByte, "")]
    // Global unicast: real-world shapes, neighbours of the special prefixes, and reserved ::/8 space.
    [InlineData("3fff:1000::1", T.GlobalUnicast, I.LowByte, "")]
    [InlineData("2001:db9::1", T.GlobalUnicast, I.LowByte, "")]
    [InlineData("2001:1::1", T.GlobalUnicast, I.LowByte, "")]
    [InlineData("2003::1", T.GlobalUnicast, I.LowByte, "")]
    [InlineData("2001:4860:4860::8888", T.GlobalUnicast, I.LowByte, "")]
    [InlineData("2a00:1450:4001:81c::200e", T.GlobalUnicast, I.LowByte, "")]
    [InlineData("2a03:2880:f12f:83:face:b00c:0:25de", T.GlobalUnicast, I.Randomized, "")]
    [InlineData("2600::21b:21ff:fe3a:1234", T.GlobalUnicast, I.Eui64, "mac=00:1b:21:3a:12:34 universal")]
    [InlineData("2001:470::5efe:cb00:7101", T.GlobalUnicast, I.Isatap, "v4=203.0.113.1")]
    [InlineData("::1:0:0:1", T.GlobalUnicast, I.EmbeddedIpv4_64, "v4=1.0.0.1")]
    public void Classifies_known_addresses(string text, Ipv6AddressType type, IidClass iid, string details)
    {
        var info = Ipv6AddressClassifier.Classify(Ipv6Address.Parse(text));
        var expected = details.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => w.Split('=', 2))
            .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "");

        Assert.Equal(type, info.Type);
        Assert.Equal(iid, info.IidClass);

        Assert.Equal(expected.TryGetValue("scope", out var scope) ? Enum.Parse<MulticastScope>(scope) : MulticastScope.None, info.MulticastScope);

        Assert.Equal(expected.ContainsKey("v4"), info.HasEmbeddedIpv4);
        if (info.HasEmbeddedIpv4)
        {
            Assert.Equal(expected["v4"], Ipv6AddressClassifier.FormatIpv4(info.EmbeddedIpv4));
        }

        Assert.Equal(expected.ContainsKey("mac"), info.HasMac);
        if (info.HasMac)
        {
            Assert.Equal(expected["mac"], Ipv6AddressClassifier.FormatMac(info.Mac));
            Assert.Equal(expected.ContainsKey("universal"), info.MacUniversal);
            Assert.Equal(!expected.ContainsKey("universal"), expected.ContainsKey("local"));
        }
        else
        {
            Assert.False(info.MacUniversal);
        }

        Assert.Equal(expected.TryGetValue("port", out var port) ? ushort.Parse(port) : (ushort)0, info.EmbeddedPort);
        Assert.Equal(expected.ContainsKey("rev"), info.EmbeddedPortReversed);

        Assert.Equal(expected.TryGetValue("server", out var server) ? server : "0.0.0.0", Ipv6AddressClassifier.FormatIpv4(info.TeredoServer));
        Assert.Equal(expected.TryGetValue("client", out var client) ? client : "0.0.0.0", Ipv6AddressClassifier.FormatIpv4(info.TeredoClient));
        Assert.Equal(expected.TryGetValue("tport", out var tport) ? ushort.Parse(tport) : (ushort)0, info.TeredoPort);
    }

    [Theory]
    [InlineData(T.Unspecified, "unspecified")]
    [InlineData(T.Loopback, "loopback")]
    [InlineData(T.Ipv4Mapped, "ipv4-mapped")]
    [InlineData(T.Ipv4Compatible, "ipv4-compatible")]
    [InlineData(T.LinkLocal, "link-local")]
    [InlineData(T.SiteLocal, "site-local")]
    [InlineData(T.UniqueLocal, "unique-local")]
    [InlineData(T.Multicast, "multicast")]
    [InlineData(T.SixToFour, "6to4")]
    [InlineData(T.Teredo, "teredo")]
    [InlineData(T.Documentation, "documentation")]
    [InlineData(T.GlobalUnicast, "global")]
    public void Type_names_use_addr6_words(Ipv6AddressType type, string name) =>
        Assert.Equal(name, Ipv6AddressClassifier.TypeName(type));

    [Theory]
    [InlineData(I.None, "unspecified")]
    [InlineData(I.Eui64, "ieee-derived")]
    [InlineData(I.Isatap, "isatap")]
    [InlineData(I.EmbeddedIpv4_32, "embedded-ipv4-32")]
    [InlineData(I.EmbeddedIpv4_64, "embedded-ipv4-64")]
    [InlineData(I.EmbeddedPort, "embedded-port")]
    [InlineData(I.LowByte, "low-byte")]
    [InlineData(I.BytePattern, "pattern-bytes")]
    [InlineData(I.Randomized, "randomized")]
    [InlineData(I.Teredo, "teredo")]
    public void Iid_names_use_addr6_words(IidClass iid, string name) =>
        Assert.Equal(name, Ipv6AddressClassifier.IidName(iid));

    [Fact]
    public void Every_enum_member_has_a_name()
    {
        foreach (var t in Enum.GetValues<Ipv6AddressType>())
        {
            Assert.NotEqual("unknown", Ipv6AddressClassifier.TypeName(t));
        }

        foreach (var c in Enum.GetValues<IidClass>())
        {
            Assert.NotEqual("unknown", Ipv6AddressClassifier.IidName(c));
        }

        Assert.Equal("unassigned", Ipv6AddressClassifier.ScopeName((MulticastScope)6));
        Assert.Equal("realm", Ipv6AddressClassifier.ScopeName(MulticastScope.RealmLocal));
        Assert.Equal("none", Ipv6AddressClassifier.ScopeName(MulticastScope.None));
    }

    // Random 128-bit values almost never land in a special prefix or IID shape, so half the draws are steered
    // into them: a special prefix with random remaining bits, and IIDs shaped like each addr6 rule.
    private static readonly (ulong Value, int Length)[] SpecialPrefixes =
    [
        (0xFE80_0000_0000_0000UL, 10), (0xFEC0_0000_0000_0000UL, 10), (0xFC00_0000_0000_0000UL, 7),
        (0xFF00_0000_0000_0000UL, 8), (0x2002_0000_0000_0000UL, 16), (0x2001_0000_0000_0000UL, 32),
        (0x3FFE_831F_0000_0000UL, 32), (0x2001_0DB8_0000_0000UL, 32), (0x3FFF_0000_0000_0000UL, 20),
        (0UL, 64),
    ];

    private static readonly Gen<ulong> HighGen = Gen.OneOf(
        Gen.ULong,
        Gen.Select(Gen.Int[0, SpecialPrefixes.Length - 1], Gen.ULong, (i, r) =>
        {
            var (value, length) = SpecialPrefixes[i];
            var hostMask = length == 64 ? 0UL : ulong.MaxValue >> length;
            return value | (r & hostMask);
        }));

    private static readonly Gen<ulong> DecimalHextet = Gen.Int[0, 255].Select(v => (ulong)(((v / 100) << 8) | (((v / 10) % 10) << 4) | (v % 10)));

    private static readonly Gen<ulong> LowGen = Gen.OneOf(
        Gen.ULong,
        Gen.ULong[0, 0xFFFF],
        Gen.ULong[0, 0xFFFF_FFFF],
        Gen.UInt.Select(v => 0xFFFF_0000_0000UL | v),
        Gen.ULong.Select(r => (r & ~0x0000_00FF_FF00_0000UL) | 0x0000_00FF_FE00_0000UL),
        Gen.Select(Gen.Bool, Gen.UInt, (u, v) => (u ? 0x0200_5EFE_0000_0000UL : 0x0000_5EFE_0000_0000UL) | v),
        Gen.Select(DecimalHextet, DecimalHextet, DecimalHextet, DecimalHextet, (a, b, c, d) => (a << 48) | (b << 32) | (c << 16) | d),
        Gen.Select(Gen.ULong[0, 0xFFFF], Gen.Bool, (p, rev) => rev ? p << 16 : p),
        Gen.ULong.Select(r => r & 0x00FF_00FF_00FF_00FFUL));

    private static readonly Gen<Ipv6Address> AddressGen = Gen.OneOf(
        Gen.Select(Gen.ULong, Gen.ULong, (h, l) => new Ipv6Address(h, l)),
        Gen.Select(HighGen, LowGen, (h, l) => new Ipv6Address(h, l)));

    [Fact]
    public void Classify_never_throws_and_is_deterministic() =>
        AddressGen.Sample(a => Ipv6AddressClassifier.Classify(a) == Ipv6AddressClassifier.Classify(a), iter: 50_000);

    [Fact]
    public void Iid_is_none_exactly_for_non_unicast_types() =>
        AddressGen.Sample(a =>
        {
            var info = Ipv6AddressClassifier.Classify(a);
            var nonUnicast = info.Type is T.Unspecified or T.Multicast;
            return (info.IidClass == I.None) == nonUnicast
                && info.IsUnicast == !nonUnicast
                && (info.MulticastScope == MulticastScope.None) == (info.Type != T.Multicast);
        }, iter: 50_000);

    [Fact]
    public void Embedded_values_round_trip_into_address_bits() =>
        AddressGen.Sample(a => EmbeddedValuesMatch(a, Ipv6AddressClassifier.Classify(a)), iter: 50_000);

    [Fact]
    public void Uniform_random_addresses_also_round_trip() =>
        Gen.Select(Gen.ULong, Gen.ULong).Sample((h, l) =>
        {
            var a = new Ipv6Address(h, l);
            var info = Ipv6AddressClassifier.Classify(a);
            return EmbeddedValuesMatch(a, info) && (info.IidClass == I.None) == !info.IsUnicast;
        }, iter: 50_000);

    /// <summary>Re-encodes every decoded value and checks it reproduces the bits it came from.</summary>
    private static bool EmbeddedValuesMatch(Ipv6Address a, Ipv6AddressInfo info)
    {
        ulong hi = a.High, lo = a.Low;

        if (info.HasEmbeddedIpv4)
        {
            var v4 = info.EmbeddedIpv4;
            var ok = info.Type switch
            {
                T.SixToFour => (uint)(hi >> 16) == v4,
                T.Teredo => ~(uint)lo == v4,
                _ => info.IidClass switch
                {
                    I.EmbeddedIpv4_32 or I.Isatap => (uint)lo == v4,
                    I.EmbeddedIpv4_64 => lo == (DecimalLooking(v4 >> 24) << 48 | DecimalLooking((v4 >> 16) & 0xFF) << 32
                                                | DecimalLooking((v4 >> 8) & 0xFF) << 16 | DecimalLooking(v4 & 0xFF)),
                    _ => false,
                },
            };
            if (!ok)
            {
                return false;
            }
        }
        else if (info.Type is T.SixToFour or T.Teredo or T.Ipv4Mapped or T.Ipv4Compatible
                 || info.IidClass is I.Isatap or I.EmbeddedIpv4_32 or I.EmbeddedIpv4_64)
        {
            return false;
        }

        if (info.Type == T.Teredo)
        {
            if (info.TeredoServer != (uint)hi || info.TeredoClient != ~(uint)lo || info.TeredoPort != (ushort)~a.Hextet(5))
            {
                return false;
            }
        }
        else if (info.TeredoServer != 0 || info.TeredoClient != 0 || info.TeredoPort != 0)
        {
            return false;
        }

        if (info.HasMac != (info.IidClass == I.Eui64))
        {
            return false;
        }

        if (info.HasMac)
        {
            var m = info.Mac;
            var iid = ((((m >> 24) & 0xFF_FFFF) ^ 0x02_0000) << 40) | 0xFF_FE00_0000UL | (m & 0xFF_FFFF);
            if (iid != lo || m >> 48 != 0 || info.MacUniversal != ((m & 0x0200_0000_0000UL) == 0))
            {
                return false;
            }
        }

        if (info.IidClass == I.EmbeddedPort)
        {
            var hextet = info.EmbeddedPortReversed ? a.Hextet(6) : a.Hextet(7);
            var other = info.EmbeddedPortReversed ? a.Hextet(7) : a.Hextet(6);
            if (info.EmbeddedPort == 0 || (hextet != info.EmbeddedPort && hextet != HexLooking(info.EmbeddedPort))
                || (other & 0xFF00) != 0 || (uint)(lo >> 32) != 0)
            {
                return false;
            }
        }
        else if (info.EmbeddedPort != 0 || info.EmbeddedPortReversed)
        {
            return false;
        }

        return true;
    }

    private static ulong DecimalLooking(uint octet) => ((octet / 100) << 8) | (((octet / 10) % 10) << 4) | (octet % 10);

    private static ushort HexLooking(ushort port) =>
        (ushort)(((port / 1000) << 12) | (((port / 100) % 10) << 8) | (((port / 10) % 10) << 4) | (port % 10));

    [Fact]
    public void Eui64_recovers_any_mac() =>
        Gen.ULong[0, 0xFFFF_FFFF_FFFFUL].Sample(mac =>
        {
            var iid = ((((mac >> 24) & 0xFF_FFFF) ^ 0x02_0000) << 40) | 0xFF_FE00_0000UL | (mac & 0xFF_FFFF);
            var info = Ipv6AddressClassifier.Classify(new Ipv6Address(0xFE80_0000_0000_0000UL, iid));
            return info.IidClass == I.Eui64 && info.HasMac && info.Mac == mac
                && info.MacUniversal == ((mac & 0x0200_0000_0000UL) == 0);
        }, iter: 20_000);

    [Fact]
    public void SixToFour_and_mapped_recover_any_ipv4() =>
        Gen.UInt.Sample(v4 =>
        {
            var sixToFour = Ipv6AddressClassifier.Classify(new Ipv6Address(0x2002_0000_0000_0000UL | ((ulong)v4 << 16), 1));
            var mapped = Ipv6AddressClassifier.Classify(new Ipv6Address(0, 0xFFFF_0000_0000UL | v4));
            var isatap = Ipv6AddressClassifier.Classify(new Ipv6Address(0x2600_0000_0000_0000UL, 0x0200_5EFE_0000_0000UL | v4));
            return sixToFour.Type == T.SixToFour && sixToFour.EmbeddedIpv4 == v4
                && mapped.Type == T.Ipv4Mapped && mapped.EmbeddedIpv4 == v4
                && isatap.IidClass == I.Isatap && isatap.EmbeddedIpv4 == v4;
        }, iter: 20_000);

    [Fact]
    public void Teredo_recovers_any_server_client_and_port() =>
        Gen.Select(Gen.UInt, Gen.UInt, Gen.UShort, Gen.UShort).Sample((server, client, port, flags) =>
        {
            var hi = 0x2001_0000_0000_0000UL | server;
            var lo = ((ulong)flags << 48) | ((ulong)(ushort)~port << 32) | ~client;
            var info = Ipv6AddressClassifier.Classify(new Ipv6Address(hi, lo));
            return info.Type == T.Teredo && info.TeredoServer == server && info.TeredoClient == client
                && info.TeredoPort == port && info.EmbeddedIpv4 == client && info.HasEmbeddedIpv4;
        }, iter: 20_000);

    [Fact]
    public void Classify_does_not_allocate()
    {
        var rows = new[]
        {
            "::", "::1", "::ffff:192.0.2.1", "fe80::21b:21ff:fe3a:1234", "fe80::200:5efe:c000:201", "ff02::1",
            "2002:c000:204::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::443", "2001:db8::192:168:1:10",
            "2001:db8::c0a8:10a", "2001:db8::dead:0:beef", "2a03:2880:f12f:83:face:b00c:0:25de", "fd00::1",
        };
        var addresses = rows.Select(Ipv6Address.Parse).ToArray();

        var sink = Run(addresses, 10_000);
        Assert.Equal(0, Allocations.Fewest(() => sink += Run(addresses, 100_000)));
        Assert.NotEqual(0UL, sink);

        static ulong Run(Ipv6Address[] addresses, int count)
        {
            ulong acc = 0;
            for (int i = 0; i < count; i++)
            {
                var info = Ipv6AddressClassifier.Classify(addresses[i % addresses.Length]);
                acc += (ulong)info.Type + (ulong)info.IidClass + info.EmbeddedIpv4 + info.Mac + info.EmbeddedPort;
            }

            return acc;
        }
    }
}

using System.Numerics;

namespace Survey6.Packets.Addresses;

/// <summary>
/// Classifies IPv6 addresses the way SI6 Networks' addr6 does (type, multicast scope, interface-identifier
/// pattern) and decodes what they embed. Pure bit tests on the two halves: it runs twice per packet, so no
/// allocation and no table look-ups beyond a switch. Rules and deviations from addr6: docs/address-classes.md.
/// </summary>
public static class Ipv6AddressClassifier
{
    // Modified EUI-64: IID bytes 3-4 are ff:fe (RFC 4291 appendix A).
    private const ulong Eui64Mask = 0x0000_00FF_FF00_0000UL;
    private const ulong Eui64Value = 0x0000_00FF_FE00_0000UL;

    // IID byte 0 bit 1: universal/local bit, inverted relative to the MAC (RFC 4291 2.5.1).
    private const ulong IidUniversalBit = 0x0200_0000_0000_0000UL;

    // ISATAP: 00-00-5e-fe or 02-00-5e-fe (RFC 5214 6.1); only the u bit may vary, as in addr6.
    private const uint IsatapMask = 0xFDFF_FFFF;
    private const uint IsatapValue = 0x0000_5EFE;

    /// <summary>The Teredo prefix 2001::/32 as the address's top 32 bits (RFC 4380 2.6).</summary>
    public const uint TeredoPrefix = 0x2001_0000;

    // The experimental Teredo prefix used before RFC 4380; addr6 still reports it as Teredo.
    private const uint ExperimentalTeredoPrefix = 0x3FFE_831F;

    public static Ipv6AddressInfo Classify(Ipv6Address a)
    {
        ulong hi = a.High, lo = a.Low;

        if ((hi >> 56) == 0xFF)
        {
            return new Ipv6AddressInfo
            {
                Type = Ipv6AddressType.Multicast,
                MulticastScope = (MulticastScope)((hi >> 48) & 0xF),
                IidClass = IidClass.None,
            };
        }

        if (hi == 0)
        {
            if (lo == 0)
            {
                return new Ipv6AddressInfo { Type = Ipv6AddressType.Unspecified, MulticastScope = MulticastScope.None };
            }

            if (lo == 1)
            {
                // addr6 reports the loopback IID as low-byte.
                return new Ipv6AddressInfo { Type = Ipv6AddressType.Loopback, MulticastScope = MulticastScope.None, IidClass = IidClass.LowByte };
            }

            var upper = lo >> 32;
            if (upper == 0xFFFF || upper == 0)
            {
                // The IID of a mapped/compatible address is the IPv4 address by definition, so do not guess.
                return new Ipv6AddressInfo
                {
                    Type = upper == 0 ? Ipv6AddressType.Ipv4Compatible : Ipv6AddressType.Ipv4Mapped,
                    MulticastScope = MulticastScope.None,
                    IidClass = IidClass.EmbeddedIpv4_32,
                    EmbeddedIpv4 = (uint)lo,
                    HasEmbeddedIpv4 = true,
                };
            }

            return ClassifyIid(Ipv6AddressType.GlobalUnicast, lo, 0, false);
        }

        var top16 = (uint)(hi >> 48);
        var top32 = (uint)(hi >> 32);

        if ((top16 & 0xFFC0) == 0xFE80)
        {
            return ClassifyIid(Ipv6AddressType.LinkLocal, lo, 0, false);
        }

        if ((top16 & 0xFFC0) == 0xFEC0)
        {
            return ClassifyIid(Ipv6AddressType.SiteLocal, lo, 0, false);
        }

        if ((top16 & 0xFE00) == 0xFC00)
        {
            return ClassifyIid(Ipv6AddressType.UniqueLocal, lo, 0, false);
        }

        if (top16 == 0x2002)
        {
            return ClassifyIid(Ipv6AddressType.SixToFour, lo, (uint)(hi >> 16), true);
        }

        if (top32 == TeredoPrefix || top32 == ExperimentalTeredoPrefix)
        {
            var client = ~(uint)lo;
            return new Ipv6AddressInfo
            {
                Type = Ipv6AddressType.Teredo,
                MulticastScope = MulticastScope.None,
                IidClass = IidClass.Teredo,
                EmbeddedIpv4 = client,
                HasEmbeddedIpv4 = true,
                TeredoServer = (uint)hi,
                TeredoClient = client,
                TeredoPort = (ushort)~(lo >> 32),
            };
        }

        if (top32 == 0x2001_0DB8 || (hi >> 44) == 0x3_FFF0)
        {
            return ClassifyIid(Ipv6AddressType.Documentation, lo, 0, false);
        }

        return ClassifyIid(Ipv6AddressType.GlobalUnicast, lo, 0, false);
    }

    /// <summary>addr6's IID tests, in addr6's order (the first match wins, which matters for ::443:1 and friends).</summary>
    private static Ipv6AddressInfo ClassifyIid(Ipv6AddressType type, ulong iid, uint prefixIpv4, bool hasPrefixIpv4)
    {
        if ((iid & Eui64Mask) == Eui64Value)
        {
            var mac = (((iid >> 40) ^ 0x02_0000UL) << 24) | (iid & 0xFF_FFFFUL);
            return new Ipv6AddressInfo
            {
                Type = type,
                MulticastScope = MulticastScope.None,
                IidClass = IidClass.Eui64,
                EmbeddedIpv4 = prefixIpv4,
                HasEmbeddedIpv4 = hasPrefixIpv4,
                Mac = mac,
                HasMac = true,
                MacUniversal = (iid & IidUniversalBit) != 0,
            };
        }

        var high32 = (uint)(iid >> 32);
        var low32 = (uint)iid;

        if ((high32 & IsatapMask) == IsatapValue)
        {
            return WithIpv4(type, IidClass.Isatap, hasPrefixIpv4 ? prefixIpv4 : low32);
        }

        var h6 = (ushort)(iid >> 16);
        var h7 = (ushort)iid;

        if (high32 == 0)
        {
            if ((h6 & 0xFF00) != 0 && h7 != 0)
            {
                return WithIpv4(type, IidClass.EmbeddedIpv4_32, hasPrefixIpv4 ? prefixIpv4 : low32);
            }

            ushort port;
            if ((h6 & 0xFF00) == 0 && (port = ServicePort(h7)) != 0)
            {
                return WithPort(type, port, false, prefixIpv4, hasPrefixIpv4);
            }

            if ((h7 & 0xFF00) == 0 && (port = ServicePort(h6)) != 0)
            {
                return WithPort(type, port, true, prefixIpv4, hasPrefixIpv4);
            }

            if ((h6 & 0xFF00) == 0 && h7 != 0)
            {
                return Plain(type, IidClass.LowByte, prefixIpv4, hasPrefixIpv4);
            }
        }

        // Cheap reject first: a decimal-looking octet hextet is at most 0x255, so bits 10-15 are clear.
        if ((iid & 0xFC00_FC00_FC00_FC00UL) == 0)
        {
            int o0 = DecimalOctet((ushort)(iid >> 48)), o1 = DecimalOctet((ushort)(iid >> 32));
            int o2 = DecimalOctet(h6), o3 = DecimalOctet(h7);
            if ((o0 | o1 | o2 | o3) >= 0)
            {
                var ipv4 = (uint)((o0 << 24) | (o1 << 16) | (o2 << 8) | o3);
                return WithIpv4(type, IidClass.EmbeddedIpv4_64, hasPrefixIpv4 ? prefixIpv4 : ipv4);
            }
        }

        return Plain(type, ZeroBytes(iid) > 2 ? IidClass.BytePattern : IidClass.Randomized, prefixIpv4, hasPrefixIpv4);
    }

    private static Ipv6AddressInfo Plain(Ipv6AddressType type, IidClass iid, uint ipv4, bool hasIpv4) => new()
    {
        Type = type,
        MulticastScope = MulticastScope.None,
        IidClass = iid,
        EmbeddedIpv4 = ipv4,
        HasEmbeddedIpv4 = hasIpv4,
    };

    private static Ipv6AddressInfo WithIpv4(Ipv6AddressType type, IidClass iid, uint ipv4) => Plain(type, iid, ipv4, true);

    private static Ipv6AddressInfo WithPort(Ipv6AddressType type, ushort port, bool reversed, uint ipv4, bool hasIpv4) => new()
    {
        Type = type,
        MulticastScope = MulticastScope.None,
        IidClass = IidClass.EmbeddedPort,
        EmbeddedIpv4 = ipv4,
        HasEmbeddedIpv4 = hasIpv4,
        EmbeddedPort = port,
        EmbeddedPortReversed = reversed,
    };

    /// <summary>
    /// addr6's service-port list, matched both as hex digits that read as the decimal port (::443) and as the
    /// binary value (::1bb). Returns the port number, or 0 when the hextet is not one of them. The two readings
    /// never collide for this list, so the order of the arms does not matter.
    /// </summary>
    internal static ushort ServicePort(ushort hextet) => hextet switch
    {
        0x21 or 21 => 21,
        0x22 or 22 => 22,
        0x23 or 23 => 23,
        0x25 or 25 => 25,
        0x49 or 49 => 49,
        0x53 or 53 => 53,
        0x80 or 80 => 80,
        0x110 or 110 => 110,
        0x123 or 123 => 123,
        0x179 or 179 => 179,
        0x220 or 220 => 220,
        0x389 or 389 => 389,
        0x443 or 443 => 443,
        0x547 or 547 => 547,
        0x993 or 993 => 993,
        0x995 or 995 => 995,
        0x1194 or 1194 => 1194,
        0x3306 or 3306 => 3306,
        0x5060 or 5060 => 5060,
        0x5061 or 5061 => 5061,
        0x5432 or 5432 => 5432,
        0x6446 or 6446 => 6446,
        0x8080 or 8080 => 8080,
        _ => 0,
    };

    /// <summary>Reads a hextet such as 0x192 as the decimal octet 192; -1 if it has a non-decimal digit or exceeds 255.</summary>
    private static int DecimalOctet(ushort hextet)
    {
        int d2 = hextet >> 8, d1 = (hextet >> 4) & 0xF, d0 = hextet & 0xF;
        return hextet > 0x255 || d1 > 9 || d0 > 9 ? -1 : (d2 * 100) + (d1 * 10) + d0;
    }

    /// <summary>Counts zero bytes without a loop: the high bit of each byte of t is set exactly for zero bytes.</summary>
    private static int ZeroBytes(ulong x)
    {
        const ulong low7 = 0x7F7F_7F7F_7F7F_7F7FUL;
        var t = ~(((x & low7) + low7) | x | low7);
        return BitOperations.PopCount(t);
    }

    /// <summary>addr6's words for the unicast subtypes and top-level types; see docs/address-classes.md.</summary>
    public static string TypeName(Ipv6AddressType t) => t switch
    {
        Ipv6AddressType.Unspecified => "unspecified",
        Ipv6AddressType.Loopback => "loopback",
        Ipv6AddressType.Ipv4Mapped => "ipv4-mapped",
        Ipv6AddressType.Ipv4Compatible => "ipv4-compatible",
        Ipv6AddressType.LinkLocal => "link-local",
        Ipv6AddressType.SiteLocal => "site-local",
        Ipv6AddressType.UniqueLocal => "unique-local",
        Ipv6AddressType.Multicast => "multicast",
        Ipv6AddressType.SixToFour => "6to4",
        Ipv6AddressType.Teredo => "teredo",
        Ipv6AddressType.Documentation => "documentation",
        Ipv6AddressType.GlobalUnicast => "global",
        _ => "unknown",
    };

    /// <summary>addr6's words for IID types (its decode output, not its filter keywords).</summary>
    public static string IidName(IidClass c) => c switch
    {
        IidClass.None => "unspecified",
        IidClass.Eui64 => "ieee-derived",
        IidClass.Isatap => "isatap",
        IidClass.EmbeddedIpv4_32 => "embedded-ipv4-32",
        IidClass.EmbeddedIpv4_64 => "embedded-ipv4-64",
        IidClass.EmbeddedPort => "embedded-port",
        IidClass.LowByte => "low-byte",
        IidClass.BytePattern => "pattern-bytes",
        IidClass.Randomized => "randomized",
        IidClass.Teredo => "teredo",
        _ => "unknown",
    };

    /// <summary>addr6's words for multicast scopes, plus "realm" (RFC 7346), which addr6 still calls reserved.</summary>
    public static string ScopeName(MulticastScope s) => s switch
    {
        MulticastScope.None => "none",
        MulticastScope.Reserved0 or MulticastScope.ReservedF => "reserved",
        MulticastScope.InterfaceLocal => "interface",
        MulticastScope.LinkLocal => "link",
        MulticastScope.RealmLocal => "realm",
        MulticastScope.AdminLocal => "admin",
        MulticastScope.SiteLocal => "site",
        MulticastScope.OrganizationLocal => "organization",
        MulticastScope.Global => "global",
        _ => "unassigned",
    };

    /// <summary>Dotted-quad text for a host-order IPv4 address (reporting only; allocates).</summary>
    public static string FormatIpv4(uint ipv4) =>
        $"{ipv4 >> 24}.{(ipv4 >> 16) & 0xFF}.{(ipv4 >> 8) & 0xFF}.{ipv4 & 0xFF}";

    /// <summary>Colon-separated lower-case text for a 48-bit MAC (reporting only; allocates).</summary>
    public static string FormatMac(ulong mac) => string.Create(17, mac, static (span, m) =>
    {
        const string digits = "0123456789abcdef";
        for (int i = 0; i < 6; i++)
        {
            var b = (int)(m >> (40 - (8 * i))) & 0xFF;
            span[i * 3] = digits[b >> 4];
            span[(i * 3) + 1] = digits[b & 0xF];
            if (i < 5)
            {
                span[(i * 3) + 2] = ':';
            }
        }
    });
}

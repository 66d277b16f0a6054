using System.Buffers.Binary;
using Survey6.Packets.Addresses;

namespace Survey6.Benchmarks;

/// <summary>Shapes of address a survey meets; formatting cost depends on how many zero hextets there are to compress.</summary>
public enum AddressShape
{
    /// <summary>Random interface identifiers (RFC 7217/8981): eight non-zero hextets, the longest text.</summary>
    RandomIid,

    /// <summary>Low-byte identifiers such as 2001:db8:1::53: one long zero run.</summary>
    LowByte,

    /// <summary>The mix seen on a LAN: random, EUI-64, low-byte, link-local and multicast.</summary>
    Mixed,
}

/// <summary>Deterministic address sets, so runs compare like with like.</summary>
public static class AddressSets
{
    public static Ipv6Address[] Create(AddressShape shape, int count, int seed = 6)
    {
        var rng = new Random(seed);
        var result = new Ipv6Address[count];
        for (var i = 0; i < count; i++)
        {
            var kind = shape switch
            {
                AddressShape.RandomIid => 0,
                AddressShape.LowByte => 1,
                _ => rng.Next(5),
            };
            var prefix = 0x2001_0db8_0000_0000UL | ((ulong)rng.Next(0x10000) << 16) | (uint)rng.Next(0x10000);
            result[i] = kind switch
            {
                0 => new Ipv6Address(prefix, (ulong)rng.NextInt64() | 0x0100_0001_0001_0001UL),
                1 => new Ipv6Address(prefix & ~0xffffUL, (ulong)rng.Next(1, 0x100)),
                2 => new Ipv6Address(prefix, Eui64(rng)),
                3 => new Ipv6Address(0xfe80UL << 48, Eui64(rng)),
                _ => new Ipv6Address(0xff02UL << 48, 0x0000_0001_ff00_0000UL | (uint)rng.Next(0x100_0000)),
            };
        }

        return result;
    }

    public static byte[] ToBytes(Ipv6Address[] addresses)
    {
        var bytes = new byte[addresses.Length * Ipv6Address.Length];
        for (var i = 0; i < addresses.Length; i++)
        {
            addresses[i].Write(bytes.AsSpan(i * Ipv6Address.Length));
        }

        return bytes;
    }

    private static ulong Eui64(Random rng)
    {
        Span<byte> mac = stackalloc byte[8];
        rng.NextBytes(mac);
        var oui = BinaryPrimitives.ReadUInt32BigEndian(mac) >> 8;
        var nic = BinaryPrimitives.ReadUInt32BigEndian(mac[4..]) & 0xff_ffff;
        return ((ulong)(oui ^ 0x02_0000) << 40) | (0xfffeUL << 24) | nic;
    }
}

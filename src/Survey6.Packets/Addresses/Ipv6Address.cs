using System.Buffers.Binary;

namespace Survey6.Packets.Addresses;

/// <summary>An IPv6 address held as two big-endian halves, so it can live in a record without allocation.</summary>
public readonly record struct Ipv6Address(ulong High, ulong Low) : IComparable<Ipv6Address>
{
    public const int Length = 16;

    public static Ipv6Address Read(ReadOnlySpan<byte> sixteenBytes) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(sixteenBytes), BinaryPrimitives.ReadUInt64BigEndian(sixteenBytes[8..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Low);
    }

    public byte this[int index] => (byte)((index < 8 ? High >> (56 - (8 * index)) : Low >> (56 - (8 * (index - 8)))) & 0xFF);

    public ushort Hextet(int index) => (ushort)((index < 4 ? High >> (48 - (16 * index)) : Low >> (48 - (16 * (index - 4)))) & 0xFFFF);

    public static Ipv6Address Parse(string text)
    {
        var ip = System.Net.IPAddress.Parse(text);
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            throw new FormatException($"'{text}' is not an IPv6 address.");
        }

        Span<byte> bytes = stackalloc byte[16];
        ip.TryWriteBytes(bytes, out _);
        return Read(bytes);
    }

    public static bool operator <(Ipv6Address left, Ipv6Address right) => left.CompareTo(right) < 0;

    public static bool operator >(Ipv6Address left, Ipv6Address right) => left.CompareTo(right) > 0;

    public static bool operator <=(Ipv6Address left, Ipv6Address right) => left.CompareTo(right) <= 0;

    public static bool operator >=(Ipv6Address left, Ipv6Address right) => left.CompareTo(right) >= 0;

    public int CompareTo(Ipv6Address other)
    {
        var c = High.CompareTo(other.High);
        return c != 0 ? c : Low.CompareTo(other.Low);
    }

    /// <summary>RFC 5952 text, the form tshark prints.</summary>
    public override string ToString()
    {
        Span<char> buffer = stackalloc char[46];
        var n = Format(buffer);
        return new string(buffer[..n]);
    }

    /// <summary>Writes RFC 5952 text (lower case, longest run of two or more zero hextets compressed, first on ties).</summary>
    public int Format(Span<char> destination)
    {
        int bestStart = -1, bestLength = 0;
        for (int i = 0; i < 8;)
        {
            if (Hextet(i) != 0)
            {
                i++;
                continue;
            }

            int j = i;
            while (j < 8 && Hextet(j) == 0)
            {
                j++;
            }

            if (j - i > bestLength)
            {
                bestStart = i;
                bestLength = j - i;
            }

            i = j;
        }

        if (bestLength < 2)
        {
            bestStart = -1;
        }

        int pos = 0;
        for (int i = 0; i < 8; i++)
        {
            if (i == bestStart)
            {
                destination[pos++] = ':';
                if (i == 0)
                {
                    destination[pos++] = ':';
                }

                i += bestLength - 1;
                continue;
            }

            pos += WriteHex(Hextet(i), destination[pos..]);
            if (i < 7)
            {
                destination[pos++] = ':';
            }
        }

        return pos;
    }

    private static int WriteHex(ushort value, Span<char> destination)
    {
        const string digits = "0123456789abcdef";
        int n = value >= 0x1000 ? 4 : value >= 0x100 ? 3 : value >= 0x10 ? 2 : 1;
        for (int k = n - 1; k >= 0; k--)
        {
            destination[k] = digits[value & 0xF];
            value >>= 4;
        }

        return n;
    }
}

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
        Span<char> buffer = stackalloc char[MaxTextLength];
        var n = Format(buffer);
        return new string(buffer[..n]);
    }

    /// <summary>Writes RFC 5952 text (lower case, longest run of two or more zero hextets compressed, first on ties).</summary>
    public int Format(Span<char> destination)
    {
        Span<byte> utf8 = stackalloc byte[MaxTextLength];
        int n = FormatUtf8(utf8);
        for (int i = 0; i < n; i++)
        {
            destination[i] = (char)utf8[i];
        }

        return n;
    }

    /// <summary>Longest text of an address (without a zone): eight four-digit hextets.</summary>
    public const int MaxTextLength = 39;

    /// <summary>Writes RFC 5952 text as ASCII bytes; the output path of millions of rows, so it avoids per-hextet shifting of the halves.</summary>
    public int FormatUtf8(Span<byte> destination)
    {
        Span<ushort> h = stackalloc ushort[8];
        h[0] = (ushort)(High >> 48);
        h[1] = (ushort)(High >> 32);
        h[2] = (ushort)(High >> 16);
        h[3] = (ushort)High;
        h[4] = (ushort)(Low >> 48);
        h[5] = (ushort)(Low >> 32);
        h[6] = (ushort)(Low >> 16);
        h[7] = (ushort)Low;

        int bestStart = -1, bestLength = 1, runStart = -1;
        for (int i = 0; i < 8; i++)
        {
            if (h[i] == 0)
            {
                if (runStart < 0)
                {
                    runStart = i;
                }

                if (i - runStart + 1 > bestLength)
                {
                    bestStart = runStart;
                    bestLength = i - runStart + 1;
                }
            }
            else
            {
                runStart = -1;
            }
        }

        int pos = 0;

        // Wireshark (like BSD inet_ntop) prints an embedded IPv4 address in dotted form for ::a.b.c.d
        // (six leading zero hextets) and ::ffff:a.b.c.d, and in hex otherwise (::102, ::1).
        if (bestStart == 0 && (bestLength == 6 || (bestLength == 5 && h[5] == 0xFFFF)))
        {
            destination[pos++] = (byte)':';
            destination[pos++] = (byte)':';
            if (bestLength == 5)
            {
                "ffff:"u8.CopyTo(destination[pos..]);
                pos += 5;
            }

            pos += WriteDottedQuad(((uint)h[6] << 16) | h[7], destination[pos..]);
            return pos;
        }

        for (int i = 0; i < 8; i++)
        {
            if (i == bestStart)
            {
                destination[pos++] = (byte)':';
                if (i == 0)
                {
                    destination[pos++] = (byte)':';
                }

                i += bestLength - 1;
                continue;
            }

            pos += WriteHex(h[i], destination[pos..]);
            if (i < 7)
            {
                destination[pos++] = (byte)':';
            }
        }

        return pos;
    }

    private static int WriteDottedQuad(uint address, Span<byte> destination)
    {
        int pos = 0;
        for (int shift = 24; shift >= 0; shift -= 8)
        {
            System.Buffers.Text.Utf8Formatter.TryFormat((address >> shift) & 0xFF, destination[pos..], out int written);
            pos += written;
            if (shift > 0)
            {
                destination[pos++] = (byte)'.';
            }
        }

        return pos;
    }

    private static int WriteHex(ushort value, Span<byte> destination)
    {
        ReadOnlySpan<byte> digits = "0123456789abcdef"u8;

        // Digits needed: 1 for 0..0xF, 2 up to 0xFF, 3 up to 0xFFF, 4 above.
        int n = (35 - System.Numerics.BitOperations.LeadingZeroCount((uint)value | 1u)) >> 2;
        if ((uint)n > (uint)destination.Length)
        {
            throw new ArgumentException("destination too small", nameof(destination));
        }

        uint v = value;
        for (int k = n - 1; k >= 0; k--)
        {
            destination[k] = digits[(int)(v & 0xF)];
            v >>= 4;
        }

        return n;
    }
}

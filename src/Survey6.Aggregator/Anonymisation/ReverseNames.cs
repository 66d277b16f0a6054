using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Anonymisation;

/// <summary>
/// Reverse-lookup names spell out an address or a prefix (<c>1.0.0.0.….8.b.d.0.1.0.0.2.ip6.arpa</c>,
/// <c>4.3.2.1.in-addr.arpa</c>); with anonymisation on they are rewritten to the anonymised address or prefix, so a
/// PTR query does not reveal what the address columns hide and still matches them. Other names pass unchanged.
/// </summary>
public static class ReverseNames
{
    /// <summary>How much longer a rewritten name can be than the original (four IPv4 labels of one digit becoming three).</summary>
    public const int MaxGrowth = 8;

    private const string Ip6Suffix = ".ip6.arpa";
    private const string Ipv4Suffix = ".in-addr.arpa";

    /// <summary>
    /// Rewrites the name in <c>name[..length]</c> in place and returns its new length. <paramref name="name"/> must have
    /// room for <see cref="MaxGrowth"/> more characters.
    /// </summary>
    public static int Anonymise(PrefixPreservingAnonymiser anonymiser, Span<char> name, int length)
    {
        ArgumentNullException.ThrowIfNull(anonymiser);
        var text = name[..length];
        if (text.EndsWith(Ip6Suffix, StringComparison.OrdinalIgnoreCase))
            return Ip6(anonymiser, name, length);
        if (text.EndsWith(Ipv4Suffix, StringComparison.OrdinalIgnoreCase))
            return Ipv4(anonymiser, name, length);
        return length;
    }

    private static int Ip6(PrefixPreservingAnonymiser anonymiser, Span<char> name, int length)
    {
        // Labels of one hex digit each, least significant first: "d.c.b.a" is the prefix abcd.
        int labels = length - Ip6Suffix.Length;
        if (labels < 1 || labels % 2 != 1)
            return length;
        int nibbles = (labels + 1) / 2;
        if (nibbles > 32)
            return length;
        UInt128 value = 0;
        for (int k = 0; k < nibbles; k++)
        {
            int at = 2 * k;
            if ((k > 0 && name[at - 1] != '.') || !char.IsAsciiHexDigit(name[at]))
                return length;
            value |= (UInt128)(uint)HexValue(name[at]) << (124 - (4 * (nibbles - 1 - k)));
        }
        var anonymised = anonymiser.AnonymisePrefix(new Ipv6Address((ulong)(value >> 64), (ulong)value), 4 * nibbles);
        var result = ((UInt128)anonymised.High << 64) | anonymised.Low;
        for (int k = 0; k < nibbles; k++)
            name[2 * k] = "0123456789abcdef"[(int)(uint)(result >> (124 - (4 * (nibbles - 1 - k)))) & 0xF];
        return length;
    }

    private static int Ipv4(PrefixPreservingAnonymiser anonymiser, Span<char> name, int length)
    {
        // Decimal labels, least significant first: "3.2.1" is the /24 prefix 1.2.3.
        var labels = name[..(length - Ipv4Suffix.Length)];
        Span<int> octets = stackalloc int[4];
        int count = 0;
        foreach (var range in ((ReadOnlySpan<char>)labels).Split('.'))
        {
            var label = labels[range];
            if (count == 4 || label.Length is 0 or > 3 || (label.Length > 1 && label[0] == '0')
                || !int.TryParse(label, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int octet) || octet > 255)
                return length;
            octets[count++] = octet;
        }
        if (count == 0)
            return length;
        uint value = 0;
        for (int k = 0; k < count; k++)
            value |= (uint)octets[k] << (24 - (8 * (count - 1 - k)));
        uint anonymised = anonymiser.AnonymiseIpv4Prefix(value, 8 * count);

        Span<char> suffix = stackalloc char[Ipv4Suffix.Length];
        name.Slice(length - Ipv4Suffix.Length, Ipv4Suffix.Length).CopyTo(suffix);
        int n = 0;
        for (int k = 0; k < count; k++)
        {
            if (k > 0)
                name[n++] = '.';
            uint octet = (anonymised >> (24 - (8 * (count - 1 - k)))) & 0xFF;
            octet.TryFormat(name[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
            n += written;
        }
        suffix.CopyTo(name[n..]);
        return n + suffix.Length;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

using System.Globalization;

namespace Survey6.Server.Repository;

/// <summary>
/// Orders Debian package versions as dpkg does (Debian Policy 5.6.12): epoch numerically, then the
/// upstream version and the revision, each compared in alternating runs of non-digits (letters
/// before other characters, <c>~</c> before everything, even the end) and digits (numerically).
/// </summary>
public static class DebianVersion
{
    public static readonly IComparer<string> Comparer = Comparer<string>.Create(Compare);

    public static int Compare(string? left, string? right)
    {
        var (leftEpoch, leftUpstream, leftRevision) = Split(left ?? "");
        var (rightEpoch, rightUpstream, rightRevision) = Split(right ?? "");
        if (leftEpoch != rightEpoch)
            return leftEpoch < rightEpoch ? -1 : 1;
        var upstream = ComparePart(leftUpstream, rightUpstream);
        return upstream != 0 ? upstream : ComparePart(leftRevision, rightRevision);
    }

    private static (long Epoch, string Upstream, string Revision) Split(string version)
    {
        version = version.Trim();
        long epoch = 0;
        var colon = version.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && long.TryParse(version.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
        {
            epoch = parsed;
            version = version[(colon + 1)..];
        }

        var hyphen = version.LastIndexOf('-');
        return hyphen < 0 ? (epoch, version, "") : (epoch, version[..hyphen], version[(hyphen + 1)..]);
    }

    private static int Order(char c) => c switch
    {
        '\0' => 0,
        >= '0' and <= '9' => 0,
        _ when char.IsAsciiLetter(c) => c,
        '~' => -1,
        _ => c + 256,
    };

    private static int ComparePart(string a, string b)
    {
        int i = 0, j = 0;
        char At(string s, int k) => k < s.Length ? s[k] : '\0';
        while (i < a.Length || j < b.Length)
        {
            while ((i < a.Length && !char.IsAsciiDigit(a[i])) || (j < b.Length && !char.IsAsciiDigit(b[j])))
            {
                var ac = Order(At(a, i));
                var bc = Order(At(b, j));
                if (ac != bc)
                    return ac < bc ? -1 : 1;
                i++;
                j++;
            }

            while (At(a, i) == '0')
                i++;
            while (At(b, j) == '0')
                j++;
            var firstDifference = 0;
            while (char.IsAsciiDigit(At(a, i)) && char.IsAsciiDigit(At(b, j)))
            {
                if (firstDifference == 0)
                    firstDifference = At(a, i) - At(b, j);
                i++;
                j++;
            }

            if (char.IsAsciiDigit(At(a, i)))
                return 1;
            if (char.IsAsciiDigit(At(b, j)))
                return -1;
            if (firstDifference != 0)
                return firstDifference < 0 ? -1 : 1;
        }

        return 0;
    }
}

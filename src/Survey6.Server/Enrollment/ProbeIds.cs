using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Survey6.Server.Enrollment;

/// <summary>Probe ids: <c>p-</c> and 12 characters of lowercase RFC 4648 base32 (60 random bits).</summary>
public static partial class ProbeIds
{
    private const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";

    public static string New() => "p-" + RandomNumberGenerator.GetString(Base32, 12);

    public static bool IsValid(string? id) => id is not null && Shape().IsMatch(id);

    [GeneratedRegex("^p-[a-z2-7]{12}$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}

using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Survey6.Server.Api;

/// <summary>
/// Operator API tokens, <c>s6_ID_SECRET</c>: an 8-character public id and a 32-character secret
/// (160 bits), both lowercase base32. The prefix lets secret scanners and people recognise one; the
/// database keeps the id and the SHA-256 of the secret only.
/// </summary>
public static partial class ApiToken
{
    private const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";

    public static string Generate() =>
        "s6_" + RandomNumberGenerator.GetString(Base32, 8) + "_" + RandomNumberGenerator.GetString(Base32, 32);

    public static bool TryParse(string? token, [NotNullWhen(true)] out string? id, [NotNullWhen(true)] out string? secret)
    {
        id = secret = null;
        if (token is null || !Shape().IsMatch(token))
            return false;
        id = token[3..11];
        secret = token[12..];
        return true;
    }

    public static bool IsValidId(string? id) => id is not null && IdShape().IsMatch(id);

    public static string HashSecret(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(secret)));

    public static bool SecretMatches(string secret, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(HashSecret(secret)), Encoding.ASCII.GetBytes(storedHash));

    [GeneratedRegex("^s6_[a-z2-7]{8}_[a-z2-7]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    [GeneratedRegex("^[a-z2-7]{8}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdShape();
}

/// <summary>Why a presented API token was not accepted.</summary>
public enum ApiTokenRefusal
{
    None,
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

public static class ApiTokenRefusalNames
{
    /// <summary>The word used in counters and events.</summary>
    public static string Name(this ApiTokenRefusal refusal) => refusal switch
    {
        ApiTokenRefusal.None => "none",
        ApiTokenRefusal.Missing => "missing",
        ApiTokenRefusal.Malformed => "malformed",
        ApiTokenRefusal.Unknown => "unknown",
        ApiTokenRefusal.Revoked => "revoked",
        ApiTokenRefusal.Expired => "expired",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal)),
    };

    /// <summary>What the caller is told.</summary>
    public static string Message(this ApiTokenRefusal refusal) => refusal switch
    {
        ApiTokenRefusal.Missing => "an API token is required: Authorization: Bearer s6_...",
        ApiTokenRefusal.Malformed => "the bearer token is not an API token (s6_ID_SECRET)",
        ApiTokenRefusal.Unknown => "unknown API token",
        ApiTokenRefusal.Revoked => "the API token was revoked",
        ApiTokenRefusal.Expired => "the API token has expired",
        _ => refusal.Name(),
    };
}

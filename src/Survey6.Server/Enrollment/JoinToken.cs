using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Survey6.Server.Enrollment;

/// <summary>
/// Join tokens in kubeadm's shape, <c>[a-z0-9]{6}.[a-z0-9]{16}</c>: a public id and a secret
/// (about 82 bits). The database keeps the id and the SHA-256 of the secret only.
/// </summary>
public static partial class JoinToken
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    public static string Generate() =>
        RandomNumberGenerator.GetString(Alphabet, 6) + "." + RandomNumberGenerator.GetString(Alphabet, 16);

    public static bool TryParse(string? token, [NotNullWhen(true)] out string? id, [NotNullWhen(true)] out string? secret)
    {
        id = secret = null;
        if (token is null || !Shape().IsMatch(token))
            return false;
        id = token[..6];
        secret = token[7..];
        return true;
    }

    public static bool IsValidId(string? id) => id is not null && IdShape().IsMatch(id);

    public static string HashSecret(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(secret)));

    public static bool SecretMatches(string secret, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(HashSecret(secret)), Encoding.ASCII.GetBytes(storedHash));

    [GeneratedRegex("^[a-z0-9]{6}\\.[a-z0-9]{16}$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();

    [GeneratedRegex("^[a-z0-9]{6}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdShape();
}

/// <summary>Why a join token was refused; <see cref="TokenRefusalNames"/> gives the word used in errors, events and counters.</summary>
public enum TokenRefusal
{
    None,
    Malformed,
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

public static class TokenRefusalNames
{
    public static string Name(this TokenRefusal refusal) => refusal switch
    {
        TokenRefusal.None => "none",
        TokenRefusal.Malformed => "malformed",
        TokenRefusal.Unknown => "unknown",
        TokenRefusal.Revoked => "revoked",
        TokenRefusal.Expired => "expired",
        TokenRefusal.UsedUp => "used-up",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal)),
    };
}

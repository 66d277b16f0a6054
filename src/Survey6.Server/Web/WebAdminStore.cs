using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Survey6.Server.Storage;

namespace Survey6.Server.Web;

/// <summary>Outcome of a login attempt.</summary>
public enum WebLoginResult
{
    Ok,
    WrongCredentials,
    LockedOut,
}

/// <summary>
/// The web UI's admin account: one user, <see cref="UserName"/>, whose password is kept in state.db's
/// settings as a PBKDF2-SHA512 hash only. Failed logins are counted per user name in memory:
/// <see cref="MaxFailures"/> in a row lock the account for <see cref="LockoutDuration"/>.
/// </summary>
public sealed class WebAdminStore(SettingsStore settings, TimeProvider time)
{
    public const string UserName = "admin";
    public const string SettingKey = "web_admin_password";
    public const int MaxFailures = 5;
    public const int MinPasswordLength = 8;
    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(5);

    private const int Iterations = 210_000;
    private const int SaltBytes = 16;
    private const int HashBytes = 32;
    private const string Prefix = "pbkdf2-sha512";

    private readonly ConcurrentDictionary<string, Failures> _failures = new(StringComparer.Ordinal);

    public bool HasPassword => !string.IsNullOrEmpty(settings.Get(SettingKey));

    /// <summary>Stores a new password's hash (replacing any previous one) and clears the lockout.</summary>
    public void SetPassword(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (password.Length < MinPasswordLength)
            throw new ArgumentException($"the password must have at least {MinPasswordLength} characters", nameof(password));
        settings.Set(SettingKey, Hash(password));
        _failures.Clear();
    }

    /// <summary>Creates a random password if none is stored yet; returns it (the only time it exists in clear), or null.</summary>
    public string? EnsurePassword()
    {
        if (HasPassword)
            return null;
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');
        SetPassword(password);
        return password;
    }

    public WebLoginResult Login(string? userName, string? password)
    {
        var user = userName ?? "";
        var now = time.GetUtcNow();
        if (_failures.TryGetValue(user, out var failures) && failures.LockedUntil is { } until && now < until)
            return WebLoginResult.LockedOut;

        if (string.Equals(user, UserName, StringComparison.Ordinal) && settings.Get(SettingKey) is { } stored && Verify(password ?? "", stored))
        {
            _failures.TryRemove(user, out _);
            return WebLoginResult.Ok;
        }

        var updated = _failures.AddOrUpdate(
            user,
            _ => new Failures(1, null),
            (_, f) => f.LockedUntil is { } u && now >= u ? new Failures(1, null) : f with { Count = f.Count + 1 });
        if (updated.Count >= MaxFailures)
        {
            _failures[user] = updated with { LockedUntil = now + LockoutDuration };
            return WebLoginResult.LockedOut;
        }

        return WebLoginResult.WrongCredentials;
    }

    internal static string Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, Iterations, HashAlgorithmName.SHA512, HashBytes);
        return string.Join('$', Prefix, Iterations.ToString(CultureInfo.InvariantCulture), Convert.ToBase64String(salt), Convert.ToBase64String(hash));
    }

    internal static bool Verify(string password, string stored)
    {
        var parts = stored.Split('$');
        if (parts.Length != 4 || parts[0] != Prefix || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations))
            return false;
        byte[] salt, expected;
        try
        {
            salt = Convert.FromBase64String(parts[2]);
            expected = Convert.FromBase64String(parts[3]);
        }
        catch (FormatException)
        {
            return false;
        }

        var actual = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA512, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    private sealed record Failures(int Count, DateTimeOffset? LockedUntil);
}

using System.Globalization;
using System.Net;
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
/// settings as a PBKDF2-SHA512 hash only. Failed logins are counted in memory per client address (an
/// IPv6 /64) and for the account: <see cref="MaxFailures"/> within <see cref="LockoutDuration"/> lock
/// that address, or the account, for <see cref="LockoutDuration"/>. An attempt counts before its
/// password is checked, so concurrent guesses cannot all be checked before the lock. The table holds
/// at most <see cref="MaxTrackedSources"/> addresses (idle ones expire, the oldest go first), and
/// user names other than the admin's are never kept.
/// </summary>
public sealed class WebAdminStore(SettingsStore settings, TimeProvider time)
{
    public const string UserName = "admin";
    public const string SettingKey = "web_admin_password";

    /// <summary>
    /// Settings key of the session stamp: every session cookie carries the stamp current at its login, and is
    /// accepted only while the stamp is unchanged. A password change and a logout replace it, ending every session
    /// (there is one account), also in a server that another process changed the password under.
    /// </summary>
    public const string SessionStampKey = "web_session_stamp";

    /// <summary>The session cookie's claim holding the stamp.</summary>
    public const string SessionStampClaim = "survey6:session_stamp";
    public const int MaxFailures = 5;
    public const int MinPasswordLength = 8;

    /// <summary>Longer user names and passwords are refused before they are checked or counted.</summary>
    public const int MaxUserNameLength = 64;

    public const int MaxPasswordLength = 1024;

    /// <summary>Client addresses whose failures are remembered at most.</summary>
    public const int MaxTrackedSources = 4096;

    public static readonly TimeSpan LockoutDuration = TimeSpan.FromMinutes(5);

    private const int Iterations = 210_000;
    private const int SaltBytes = 16;
    private const int HashBytes = 32;
    private const string Prefix = "pbkdf2-sha512";
    private const string AccountKey = "account";

    private readonly Dictionary<string, Failures> _failures = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public bool HasPassword => !string.IsNullOrEmpty(settings.Get(SettingKey));

    /// <summary>Addresses (and the account) with failures remembered now; for tests.</summary>
    public int TrackedSources
    {
        get
        {
            lock (_lock)
                return _failures.Count;
        }
    }

    /// <summary>Stores a new password's hash (replacing any previous one) and clears the lockout.</summary>
    public void SetPassword(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (password.Length < MinPasswordLength)
            throw new ArgumentException($"the password must have at least {MinPasswordLength} characters", nameof(password));
        settings.Set((SettingKey, Hash(password)), (SessionStampKey, NewStamp()));
        lock (_lock)
            _failures.Clear();
    }

    /// <summary>The stamp a new session carries.</summary>
    public string CurrentSessionStamp() => settings.GetOrAdd(SessionStampKey, NewStamp()); // added on a state.db from before stamps

    /// <summary>True while <paramref name="stamp"/> (a session's) is the current one: one state.db read.</summary>
    public bool IsSessionCurrent(string? stamp) =>
        !string.IsNullOrEmpty(stamp) && settings.Get(SessionStampKey) is { } current
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(stamp), Encoding.ASCII.GetBytes(current));

    /// <summary>Ends every session: a logout, or a password change.</summary>
    public void EndAllSessions() => settings.Set(SessionStampKey, NewStamp());

    private static string NewStamp() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>Creates a random password if none is stored yet; returns it (the only time it exists in clear), or null.</summary>
    public string? EnsurePassword()
    {
        if (HasPassword)
            return null;
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');
        SetPassword(password);
        return password;
    }

    /// <summary>Why <paramref name="userName"/> or <paramref name="password"/> is refused unread, or null.</summary>
    public static string? CheckLengths(string? userName, string? password) =>
        (userName?.Length ?? 0) > MaxUserNameLength ? $"user name too long (at most {MaxUserNameLength} characters)"
        : (password?.Length ?? 0) > MaxPasswordLength ? $"password too long (at most {MaxPasswordLength} characters)"
        : null;

    public WebLoginResult Login(string? userName, string? password, IPAddress? remote = null)
    {
        var user = userName ?? "";
        if (CheckLengths(user, password) is not null)
            return WebLoginResult.WrongCredentials;
        var now = time.GetUtcNow();
        var isAdmin = string.Equals(user, UserName, StringComparison.Ordinal);
        var source = "source " + Enrollment.JoinRateLimiter.SourceKey(remote);
        lock (_lock)
        {
            // Counted before the (slow) check: a burst of guesses is refused once the count is reached.
            var locked = Count(source, now);
            if (isAdmin)
                locked |= Count(AccountKey, now);
            if (locked)
                return WebLoginResult.LockedOut;
        }

        if (isAdmin && settings.Get(SettingKey) is { } stored && Verify(password ?? "", stored))
        {
            lock (_lock)
            {
                _failures.Remove(source);
                _failures.Remove(AccountKey);
            }

            return WebLoginResult.Ok;
        }

        lock (_lock)
        {
            var locked = LockIfDue(source, now);
            if (isAdmin)
                locked |= LockIfDue(AccountKey, now);
            return locked ? WebLoginResult.LockedOut : WebLoginResult.WrongCredentials;
        }
    }

    /// <summary>Counts an attempt for <paramref name="key"/>; true if it is locked or over the count. Call under the lock.</summary>
    private bool Count(string key, DateTimeOffset now)
    {
        if (_failures.TryGetValue(key, out var failures))
        {
            if (failures.LockedUntil is { } until && now < until)
                return true;
            if (failures.LockedUntil is not null || now - failures.Last >= LockoutDuration)
                failures = new Failures(0, now, null); // the lock or the streak has run out
        }
        else
        {
            MakeRoom(now);
            failures = new Failures(0, now, null);
        }

        failures = failures with { Count = failures.Count + 1, Last = now };
        _failures[key] = failures;
        return failures.Count > MaxFailures;
    }

    private bool LockIfDue(string key, DateTimeOffset now)
    {
        if (!_failures.TryGetValue(key, out var failures))
            return false;
        if (failures.LockedUntil is { } until && now < until)
            return true;
        if (failures.Count < MaxFailures)
            return false;
        _failures[key] = failures with { LockedUntil = now + LockoutDuration };
        return true;
    }

    // Forgets sources idle past the lockout; when all are recent, the oldest goes.
    private void MakeRoom(DateTimeOffset now)
    {
        if (_failures.Count < MaxTrackedSources)
            return;
        foreach (var (key, failures) in _failures.ToList())
        {
            var until = failures.LockedUntil ?? failures.Last + LockoutDuration;
            if (now >= until)
                _failures.Remove(key);
        }

        while (_failures.Count >= MaxTrackedSources)
            _failures.Remove(_failures.Where(f => f.Key != AccountKey).MinBy(f => f.Value.Last).Key);
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

    private sealed record Failures(int Count, DateTimeOffset Last, DateTimeOffset? LockedUntil);
}

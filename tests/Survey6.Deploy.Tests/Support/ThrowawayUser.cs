using System.Globalization;
using System.Security.Cryptography;

namespace Survey6.Deploy.Tests.Support;

/// <summary>A system user and group made for one test (no home, no login), deleted on dispose.</summary>
internal sealed class ThrowawayUser : IDisposable
{
    public ThrowawayUser()
    {
        Tool.RequireRoot();
        Name = "s6u" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Tool.Run("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", Name).Check();
        Uid = int.Parse(Tool.Run("id", "-u", Name).Check().Stdout.Trim(), CultureInfo.InvariantCulture);
    }

    public string Name { get; }

    public int Uid { get; }

    /// <summary>A new directory owned by this user with <paramref name="mode"/> (octal digits, e.g. "0700").</summary>
    public string Directory(string path, string mode)
    {
        Tool.Run("install", "-d", "-o", Name, "-g", Name, "-m", mode, path).Check();
        return path;
    }

    /// <summary>Paths under <paramref name="root"/> (itself included) that this user does not own.</summary>
    public IReadOnlyList<string> NotOwned(string root) =>
        Tool.Run("find", root, "!", "-user", Name, "-printf", "%p (%u:%g %m)\\n").Check().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public void Dispose() => Tool.Run("userdel", Name); // its group goes with it (--user-group)
}

using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;

namespace Survey6.Deploy.Tests.Systemd;

/// <summary>
/// A Debian 12 root filesystem for booting with systemd-nspawn, made once with debootstrap from the mirror this
/// machine's apt sources name and cached under <c>.build/systemd/rootfs-KEY</c>; KEY hashes the recipe below, so a
/// change to it builds a new one (and removes the old). Containers never write to it: each boots an overlay of it.
/// The containers have no way to the mirror (only the test's own link), so everything the packages under test
/// depend on is installed here, and the image's own apt sources are emptied.
/// </summary>
internal static class DebianRootfs
{
    public const string Suite = "bookworm";

    // What survey6-server and survey6-probe depend on (deploy/debian/build), what the test runs in the containers
    // (curl for the apt key as docs/operations.md does it, ping), and systemd itself.
    private static readonly string[] Packages =
    [
        "systemd", "systemd-sysv", "dbus", "iproute2", "iputils-ping", "curl", "ca-certificates",
        "libpcap0.8", "libssl3", "zlib1g", "libstdc++6", "adduser", "init-system-helpers", "apt-utils", "gpg", "gpgv", "gpg-agent",
    ];

    // Bump to rebuild the cache when the steps after debootstrap change.
    private const int RecipeVersion = 2;

    /// <summary>The cached root filesystem, built first if missing (one builder at a time across processes).</summary>
    public static string Get(string repository)
    {
        var cache = Path.Combine(repository, ".build", "systemd");
        Directory.CreateDirectory(cache);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{RecipeVersion}|{Suite}|minbase|{string.Join(',', Packages)}")))[..12];
        var rootfs = Path.Combine(cache, "rootfs-" + key);
        using var buildLock = Lock(Path.Combine(cache, "rootfs.lock"));
        if (File.Exists(Path.Combine(rootfs, ".survey6-rootfs")))
            return rootfs;

        foreach (var old in Directory.EnumerateDirectories(cache, "rootfs-*"))
        {
            // A different recipe, or a build that did not finish (debootstrap may have left /proc and /sys mounted in it).
            Mounts.UnmountUnder(old);
            Directory.Delete(old, recursive: true);
        }

        var building = rootfs + ".building";
        var mirror = Mirror();
        var debootstrap = Tool.Run(TimeSpan.FromMinutes(30), "debootstrap", "--variant=minbase", "--include=" + string.Join(',', Packages), Suite, building, mirror);
        Assert.True(debootstrap.ExitCode == 0, $"debootstrap from {mirror} failed ({debootstrap.ExitCode}):\n{Tail(debootstrap.Output)}");

        // No network inside: apt knows only what the test adds (the C&C's repository).
        File.WriteAllText(Path.Combine(building, "etc", "apt", "sources.list"), "");
        Tool.Run("chroot", building, "apt-get", "clean").Check();
        // nspawn gives each container a /dev of its own; keep no device nodes in a cache that lives in the repository.
        foreach (var entry in new DirectoryInfo(Path.Combine(building, "dev")).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo directory && entry.LinkTarget is null)
                directory.Delete(recursive: true);
            else
                entry.Delete();
        }

        File.WriteAllText(Path.Combine(building, ".survey6-rootfs"), key + "\n");
        Directory.Move(building, rootfs);
        return rootfs;
    }

    /// <summary>The Debian archive this machine's apt sources use for <see cref="Suite"/> (one-line or deb822 format).</summary>
    internal static string Mirror()
    {
        var files = new List<string>();
        if (File.Exists("/etc/apt/sources.list"))
            files.Add("/etc/apt/sources.list");
        if (Directory.Exists("/etc/apt/sources.list.d"))
            files.AddRange(Directory.EnumerateFiles("/etc/apt/sources.list.d").Where(f => f.EndsWith(".list", StringComparison.Ordinal) || f.EndsWith(".sources", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            var found = file.EndsWith(".sources", StringComparison.Ordinal) ? FromDeb822(text) : FromOneLine(text);
            if (found is not null)
                return found;
        }

        Assert.Fail($"no apt source for Debian {Suite} in {string.Join(", ", files)}: debootstrap needs a mirror");
        return "";
    }

    private static string? FromOneLine(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#')[0].Trim();
            if (!line.StartsWith("deb ", StringComparison.Ordinal))
                continue;
            var words = line[4..].Trim();
            if (words.StartsWith('['))
                words = words[(words.IndexOf(']', StringComparison.Ordinal) + 1)..].Trim();
            var parts = words.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && parts[1] == Suite)
                return parts[0];
        }

        return null;
    }

    private static string? FromDeb822(string text)
    {
        foreach (var stanza in text.Replace("\r", "", StringComparison.Ordinal).Split("\n\n"))
        {
            var fields = stanza.Split('\n').Where(l => !l.StartsWith('#') && l.Contains(':', StringComparison.Ordinal))
                .Select(l => l.Split(':', 2)).GroupBy(p => p[0].Trim(), StringComparer.OrdinalIgnoreCase)
                .ToDictionary(g => g.Key, g => g.First()[1].Trim(), StringComparer.OrdinalIgnoreCase);
            if (fields.TryGetValue("Types", out var types) && types.Split(' ').Contains("deb")
                && fields.TryGetValue("Suites", out var suites) && suites.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(Suite)
                && fields.TryGetValue("URIs", out var uris) && (!fields.TryGetValue("Enabled", out var enabled) || enabled != "no"))
                return uris.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        }

        return null;
    }

    private static FileStream Lock(string path)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                // FileShare.None is an flock on Linux: a second test process waits here while the first builds.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (waited.Elapsed < TimeSpan.FromMinutes(40))
            {
                Thread.Sleep(1000);
            }
        }
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}

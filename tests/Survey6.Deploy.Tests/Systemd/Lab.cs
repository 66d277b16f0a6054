using System.Globalization;
using System.Security.Cryptography;

namespace Survey6.Deploy.Tests.Systemd;

/// <summary>
/// A directory for one run of the systemd tier (container overlays, logs) and a record of every host resource it
/// created (mounts, network namespaces, nspawn processes), so that <see cref="Dispose"/> removes them whatever the
/// outcome, and a later run removes what a killed test process left (<see cref="SweepAbandoned"/>).
/// </summary>
internal sealed class Lab : IDisposable
{
    private const string Prefix = "survey6-systemd-";
    private const string RecordFile = "resources";
    private const string OwnerFile = "owner";
    private readonly object _sync = new();

    public Lab()
    {
        Tool.RequireRoot();
        Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Directory = Path.Combine(Path.GetTempPath(), Prefix + Id);
        System.IO.Directory.CreateDirectory(Directory);
        File.WriteAllText(Path.Combine(Directory, OwnerFile), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Eight random hex digits naming this run's namespaces, links and machines.</summary>
    public string Id { get; }

    public string Directory { get; }

    /// <summary>Notes a resource to remove: <c>mount PATH</c>, <c>netns NAME</c> or <c>nspawn PID</c>.</summary>
    public void Record(string kind, string value)
    {
        lock (_sync)
            File.AppendAllText(Path.Combine(Directory, RecordFile), $"{kind} {value}\n");
    }

    /// <summary>Removes the labs of test processes that no longer run.</summary>
    public static void SweepAbandoned()
    {
        foreach (var dir in System.IO.Directory.EnumerateDirectories(Path.GetTempPath(), Prefix + "*"))
        {
            var owner = Path.Combine(dir, OwnerFile);
            if (File.Exists(owner) && int.TryParse(File.ReadAllText(owner), out var pid) && System.IO.Directory.Exists($"/proc/{pid}"))
                continue; // a run in progress
            Remove(dir);
        }
    }

    public void Dispose() => Remove(Directory);

    /// <summary>Every recorded resource, newest first, each attempted even if another fails; then the directory.</summary>
    private static void Remove(string directory)
    {
        var record = Path.Combine(directory, RecordFile);
        var entries = File.Exists(record) ? File.ReadAllLines(record).Reverse().ToList() : [];
        foreach (var entry in entries.Where(e => e.StartsWith("nspawn ", StringComparison.Ordinal)))
            StopNspawn(entry["nspawn ".Length..], directory);
        foreach (var entry in entries)
        {
            var (kind, value) = (entry.Split(' ', 2)[0], entry.Split(' ', 2)[^1]);
            if (kind == "mount")
                Mounts.UnmountUnder(value);
            else if (kind == "netns")
                Tool.Run("ip", "netns", "del", value);
        }

        Mounts.UnmountUnder(directory);
        try
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the next sweep (a lazy unmount may still be draining).
        }
    }

    /// <summary>Kills an nspawn process of this lab (checked by its command line) and its container.</summary>
    private static void StopNspawn(string pidText, string directory)
    {
        if (!int.TryParse(pidText, out var pid))
            return;
        string cmdline;
        try
        {
            cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (IOException)
        {
            return; // gone
        }

        if (!cmdline.Contains(directory, StringComparison.Ordinal))
            return; // the pid was reused by something else
        foreach (var child in Container.ChildrenOf(pid))
            Tool.Run("kill", "-KILL", child.ToString(CultureInfo.InvariantCulture)); // the container's init: its whole PID namespace dies with it
        Tool.Run("kill", "-KILL", pidText);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (System.IO.Directory.Exists($"/proc/{pid}") && DateTime.UtcNow < deadline)
            Thread.Sleep(100);
    }
}

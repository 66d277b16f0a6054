using System.Text.Json;
using System.Text.Json.Serialization;
using Survey6.Packets.Files;

namespace Survey6.Probe.Daemon;

/// <summary>The persistent suspended flag: present means "do not capture", across restarts.</summary>
public sealed record SuspendedFlag(
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("since")] DateTimeOffset Since);

/// <summary>
/// The daemon's files in the state directory: <c>probe.sock</c> (control socket, 0660),
/// <c>probe.lock</c> (held while a daemon runs on this directory), <c>suspended</c> (the flag) and
/// <c>spool/</c> (default spool). Shared by the daemon and the CLI, which must agree on them.
/// </summary>
public sealed class ProbeDaemonPaths(string stateDirectory)
{
    public string Root { get; } = Path.GetFullPath(stateDirectory);

    public string SocketPath => Path.Combine(Root, "probe.sock");

    public string LockPath => Path.Combine(Root, "probe.lock");

    public string SuspendedPath => Path.Combine(Root, "suspended");

    public string DefaultSpoolPath => Path.Combine(Root, "spool");

    public SuspendedFlag? ReadSuspended()
    {
        try
        {
            var text = File.ReadAllText(SuspendedPath);
            return JsonSerializer.Deserialize<SuspendedFlag>(text) ?? new SuspendedFlag("", DateTimeOffset.MinValue);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (JsonException)
        {
            // Present but unreadable (an operator's touch): still suspended.
            return new SuspendedFlag("", File.GetLastWriteTimeUtc(SuspendedPath));
        }
    }

    /// <summary>Written and synced before capture stops, so a crash in between still restarts suspended.</summary>
    public void WriteSuspended(SuspendedFlag flag)
    {
        EnsureRoot();
        DurableFiles.WriteAtomically(SuspendedPath, JsonSerializer.SerializeToUtf8Bytes(flag));
    }

    public void ClearSuspended()
    {
        File.Delete(SuspendedPath);
        if (Directory.Exists(Root))
            DurableFiles.SyncDirectory(Root);
    }

    /// <summary>
    /// An exclusive lock on <c>probe.lock</c> (flock, released by the kernel even after kill -9): two daemons
    /// on one state directory would repair each other's open files.
    /// </summary>
    public FileStream AcquireLock()
    {
        EnsureRoot();
        try
        {
            return new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"another probe daemon is running on {Root} ({e.Message})", e);
        }
    }

    public void EnsureRoot()
    {
        if (!Directory.Exists(Root))
        {
            // Group may traverse (to reach the 0660 socket); key files inside stay owner-only.
            Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }
    }
}

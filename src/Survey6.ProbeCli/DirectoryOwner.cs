using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text;

namespace Survey6.Cli;

/// <summary>
/// Root running a command on a directory that belongs to a service user (the <c>survey6</c> user's
/// <c>/var/lib/survey6/...</c> of the Debian packages) must not leave files there that the service cannot read:
/// <c>sudo survey6 probe join</c> once wrote a root-owned <c>key.pem</c> and <c>probe.json</c> (0600), and the probe
/// service restarted forever. So such a command runs as the directory's owner, as <c>sudo -u OWNER</c> would: its
/// groups, its uid, no capability left. Switching the whole process, rather than chown-ing files afterwards, also
/// covers what SQLite, gpg and the runtime create, and leaves the command able to do only what the service could.
/// The directory is the one given or, if it does not exist yet, its nearest existing parent (a directory root
/// creates under a root-owned parent stays root's). The probe daemon cannot switch: it needs capture capabilities,
/// which a change of uid drops, so <see cref="DaemonRefusal"/> names the command that starts it as the owner.
/// </summary>
public static partial class DirectoryOwner
{
    private const int AtCurrentDirectory = -100;
    private const uint StatxUid = 0x8;
    private const uint StatxGid = 0x10;
    private const int StatxSize = 256;
    private const int StatxUidOffset = 20; // struct statx: stx_mask, stx_blksize (u32), stx_attributes (u64), stx_nlink, stx_uid
    private const int StatxGidOffset = 24;

    /// <summary>
    /// Root only: becomes the owner of <paramref name="directory"/> when that is not root, and says so on
    /// <paramref name="note"/>. Does nothing for other users, or once switched. A switch that fails throws
    /// <see cref="UnauthorizedAccessException"/> naming the command to run instead.
    /// </summary>
    public static void Become(string directory, ParseResult parse)
    {
        if (GetEffectiveUserId() != 0 || Owner(directory) is not { } owner || owner.Uid == 0)
            return;

        if ((owner.Name is null ? SetGroups(0, IntPtr.Zero) : InitGroups(owner.Name, owner.Gid)) != 0
            || SetResGid(owner.Gid, owner.Gid, owner.Gid) != 0
            || SetResUid(owner.Uid, owner.Uid, owner.Uid) != 0
            || GetEffectiveUserId() != owner.Uid)
        {
            var error = Marshal.GetLastPInvokeErrorMessage();
            throw new UnauthorizedAccessException(
                $"{owner.Directory} belongs to {owner.Display}, but this process cannot become that user ({error}); run it as that user: `sudo -u {owner.Display} {CommandLine(parse)}`");
        }

        if (owner.Home is { Length: > 0 } home)
            Environment.SetEnvironmentVariable("HOME", home);
        Environment.SetEnvironmentVariable("USER", owner.Display);
        Environment.SetEnvironmentVariable("LOGNAME", owner.Display);
        parse.InvocationConfiguration.Error.WriteLine($"survey6: running as {owner.Display}, the owner of {owner.Directory}");
    }

    /// <summary>
    /// For <c>probe run</c> started by root on a directory another user owns: the refusal, naming the command that
    /// runs the daemon as that user with only the capture capabilities (as its systemd unit does); null otherwise.
    /// </summary>
    public static string? DaemonRefusal(string directory, ParseResult parse)
    {
        if (GetEffectiveUserId() != 0 || Owner(directory) is not { } owner || owner.Uid == 0)
            return null;
        var group = owner.Name is null ? owner.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture) : owner.Name;
        return $"{owner.Directory} belongs to {owner.Display}; a daemon run by root would leave files there that {owner.Display} cannot read. " +
            $"Start its service (`systemctl start survey6-probe` for the packaged one), or run it as {owner.Display} with the capture capabilities: " +
            $"`setpriv --reuid={owner.Display} --regid={group} --init-groups --inh-caps=+net_raw,+net_admin --ambient-caps=+net_raw,+net_admin {CommandLine(parse)}`";
    }

    /// <summary>The command line that was run, as a shell would take it: the program as the user called it, then the arguments.</summary>
    internal static string CommandLine(ParseResult parse)
    {
        var words = new List<string>();
        var program = Environment.ProcessPath ?? "survey6";
        if (Path.GetFileNameWithoutExtension(program) == "dotnet")
            words.AddRange([program, typeof(DirectoryOwner).Assembly.Location]);
        else
            words.Add(OnPath(program) ? Path.GetFileName(program) : program);
        words.AddRange(parse.Tokens.Select(t => t.Value));
        return string.Join(' ', words.Select(Quote));
    }

    private static bool OnPath(string program)
    {
        var name = Path.GetFileName(program);
        var target = Resolve(program);
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists) is { } found && Resolve(found) == target;
    }

    private static string Resolve(string path) => new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);

    private static string Quote(string word)
    {
        if (word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=@%+,[]".Contains(c, StringComparison.Ordinal)))
            return word;
        var quoted = new StringBuilder("'");
        quoted.Append(word.Replace("'", "'\\''", StringComparison.Ordinal));
        return quoted.Append('\'').ToString();
    }

    private sealed record OwnerInfo(string Directory, uint Uid, uint Gid, string? Name, string? Home)
    {
        public string Display => Name ?? Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The owner of the directory or, while it does not exist, of its nearest existing parent.</summary>
    private static OwnerInfo? Owner(string directory)
    {
        var path = Path.GetFullPath(directory);
        while (!Path.Exists(path))
        {
            var parent = Path.GetDirectoryName(path);
            if (parent is null)
                return null;
            path = parent;
        }

        var buffer = new byte[StatxSize];
        if (Statx(AtCurrentDirectory, path, 0, StatxUid | StatxGid, buffer) != 0)
            return null;
        var uid = BitConverter.ToUInt32(buffer, StatxUidOffset);
        var gid = BitConverter.ToUInt32(buffer, StatxGidOffset);
        var entry = GetPasswordEntry(uid);
        if (entry == IntPtr.Zero)
            return new OwnerInfo(path, uid, gid, null, null); // no account: its uid, the directory's group
        var passwd = Marshal.PtrToStructure<Passwd>(entry);
        return new OwnerInfo(path, uid, passwd.Gid, Marshal.PtrToStringUTF8(passwd.Name), Marshal.PtrToStringUTF8(passwd.Home));
    }

    // struct passwd of glibc (the same on every 64-bit Linux).
    [StructLayout(LayoutKind.Sequential)]
    private struct Passwd
    {
        public IntPtr Name;
        public IntPtr Password;
        public uint Uid;
        public uint Gid;
        public IntPtr Gecos;
        public IntPtr Home;
        public IntPtr Shell;
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, [Out] byte[] buffer);

    [LibraryImport("libc", EntryPoint = "getpwuid")]
    private static partial IntPtr GetPasswordEntry(uint uid);

    // glibc applies the set*id and setgroups calls to every thread of the process, as POSIX requires.
    [LibraryImport("libc", EntryPoint = "initgroups", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int InitGroups(string user, uint group);

    [LibraryImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static partial int SetGroups(nuint size, IntPtr list);

    [LibraryImport("libc", EntryPoint = "setresgid", SetLastError = true)]
    private static partial int SetResGid(uint real, uint effective, uint saved);

    [LibraryImport("libc", EntryPoint = "setresuid", SetLastError = true)]
    private static partial int SetResUid(uint real, uint effective, uint saved);
}

using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Survey6.Packets.Files;

/// <summary>
/// One owner for a directory: an exclusive <c>flock</c> on a lock file, held while the owner runs and released by the
/// kernel when it exits, even after <c>kill -9</c>. The owner writes its PID into the file, so that a second process
/// is refused with the PID of the first (<see cref="OwnerLockException.OwnerPid"/>). Plain descriptors rather than a
/// <see cref="FileStream"/>: .NET takes its own shared lock to read a file, which the owner's lock would refuse.
/// </summary>
public sealed partial class OwnerLock : IDisposable
{
    private const int ReadWrite = 2;
    private const int Create = 0x40;
    private const int CloseOnExec = 0x80000;
    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;
    private const int WouldBlock = 11; // EWOULDBLOCK (EAGAIN) on Linux
    private const int OwnerMode = 0x1A0; // 0640
    private const int MaxPidBytes = 32;

    private int _fd;

    private OwnerLock(string path, int fd)
    {
        Path = path;
        _fd = fd;
    }

    public string Path { get; }

    /// <summary>
    /// Takes the lock on <paramref name="path"/> (creating the file) and records this process as its owner; throws
    /// <see cref="OwnerLockException"/> naming the owner when another process holds it.
    /// </summary>
    public static OwnerLock Acquire(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fd = Open(path, ReadWrite | Create | CloseOnExec, OwnerMode);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno == 13
                ? new UnauthorizedAccessException($"cannot open the lock file {path}: {Marshal.GetPInvokeErrorMessage(errno)}")
                : new IOException($"cannot open the lock file {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        if (Flock(fd, LockExclusive | LockNonBlocking) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            var owner = errno == WouldBlock ? ReadPid(fd) : null;
            _ = Close(fd);
            if (errno == WouldBlock)
                throw new OwnerLockException(path, owner);
            throw new IOException($"cannot lock {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        if (Ftruncate(fd, 0) != 0 || Pwrite(fd, pid, pid.Length, 0) != pid.Length)
        {
            var error = Marshal.GetLastPInvokeErrorMessage();
            _ = Close(fd);
            throw new IOException($"cannot write the owner's PID to {path}: {error}");
        }

        return new OwnerLock(path, fd);
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
            _ = Close(fd); // closing releases the flock; the file stays, with a stale PID the next owner overwrites
    }

    private static int? ReadPid(int fd)
    {
        var buffer = new byte[MaxPidBytes];
        var read = Pread(fd, buffer, buffer.Length, 0);
        if (read <= 0)
            return null;
        return int.TryParse(Encoding.ASCII.GetString(buffer, 0, (int)read).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int Ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint Pwrite(int fd, byte[] buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint Pread(int fd, byte[] buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

/// <summary>Another process owns the lock; <see cref="OwnerPid"/> is its PID when it recorded one.</summary>
public sealed class OwnerLockException : IOException
{
    public OwnerLockException()
    {
        Path = "";
    }

    public OwnerLockException(string message)
        : base(message)
    {
        Path = "";
    }

    public OwnerLockException(string message, Exception innerException)
        : base(message, innerException)
    {
        Path = "";
    }

    public OwnerLockException(string path, int? ownerPid)
        : base(ownerPid is { } pid ? $"{path} is held by process {pid}" : $"{path} is held by another process")
    {
        Path = path;
        OwnerPid = ownerPid;
    }

    public string Path { get; }

    public int? OwnerPid { get; }
}

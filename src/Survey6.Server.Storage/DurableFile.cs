using System.Runtime.InteropServices;

namespace Survey6.Server.Storage;

/// <summary>The fsync discipline: file contents, then the directory entry that names them.</summary>
internal static partial class DurableFile
{
    /// <summary>0640: the server and its group (the aggregator) read captures; nobody else does.</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    /// <summary>0750, for the same reason.</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute;

    // open(2) flags, equal on every Linux architecture .NET supports.
    private const int ReadOnly = 0;
    private const int CloseOnExec = 0x80000;
    private const uint SyncFileRangeWrite = 2;

    /// <summary>
    /// Creates a file (0640 before umask), or opens an existing one, for exclusive reading and writing. Unbuffered:
    /// callers write through <see cref="RandomAccess"/> at explicit offsets.
    /// </summary>
    public static FileStream OpenExclusive(string path, System.IO.FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = FileMode;
        return new FileStream(path, options);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="content"/> so that a crash leaves either the old file or
    /// the new one: write a temporary file, fsync it, rename it over, fsync the directory.
    /// </summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var temporary = path + StorageLayout.TempSuffix;
        File.Delete(temporary);
        using (var file = OpenExclusive(temporary, System.IO.FileMode.CreateNew))
        {
            file.Write(content);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(path)!);
    }

    /// <summary>Creates a folder and its missing ancestors (0750 before umask), making each new entry durable.</summary>
    public static void CreateDirectory(string path)
    {
        if (Directory.Exists(path))
            return;
        var parent = Path.GetDirectoryName(path);
        if (parent is not null)
            CreateDirectory(parent);
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(path);
        else
            Directory.CreateDirectory(path, DirectoryMode);
        if (parent is not null)
            SyncDirectory(parent);
    }

    /// <summary>
    /// fsync on a directory makes the names in it (renames, creations) durable. .NET refuses to open a directory as
    /// a file handle, hence open(2) directly. Windows has no equivalent and needs none for NTFS renames.
    /// </summary>
    public static void SyncDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
            return;
        int fd = Native.Open(path, ReadOnly | CloseOnExec);
        if (fd < 0)
            throw Failure("open", path);
        try
        {
            if (Native.Fsync(fd) != 0)
                throw Failure("fsync", path);
        }
        finally
        {
            _ = Native.Close(fd);
        }
    }

    /// <summary>
    /// Asks the kernel to start writing a range of the file to disk now, without waiting for it
    /// (sync_file_range with SYNC_FILE_RANGE_WRITE). This promises nothing about durability: it
    /// lets the disk work while more bytes arrive, so the fsync before the acknowledgement finds
    /// little left to write. Best effort: where it is unsupported, the fsync does all the work.
    /// </summary>
    public static void StartWriteback(Microsoft.Win32.SafeHandles.SafeFileHandle file, long offset, long count)
    {
        if (!OperatingSystem.IsLinux())
            return;
        _ = Native.SyncFileRange(file, offset, count, SyncFileRangeWrite);
    }

    /// <summary>Deletes a file if present; a missing file is not an error.</summary>
    public static void DeleteIfExists(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private static IOException Failure(string call, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} of directory '{path}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int Open(string path, int flags);

        [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        public static partial int Fsync(int fd);

        [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
        public static partial int SyncFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, long count, uint flags);

        [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        public static partial int Close(int fd);
    }
}

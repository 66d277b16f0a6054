using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Survey6.Packets.Files;

/// <summary>
/// The fsync discipline every part of survey6 uses to put a file in place: write it under a temporary name, flush it
/// to disk, rename it over its target, then fsync the folder, because a rename is durable only once the directory
/// entry is. The probe's spool, the C&amp;C's store and keys, and the aggregator's lake all publish through here.
/// </summary>
// Here, in the dependency-free packet core, because every program references it: the probe must not gain the
// server's or SQLite's dependencies to share this code.
public static partial class DurableFiles
{
    /// <summary>The suffix of the temporary file <see cref="WriteAtomically"/> writes beside its target.</summary>
    public const string TempSuffix = ".tmp";

    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="content"/> so that a crash leaves either the old file or
    /// the new one: a temporary file created with <paramref name="mode"/> (null: the process's default), fsynced,
    /// renamed over the target, then the folder fsynced.
    /// </summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content, UnixFileMode? mode = null)
    {
        var temporary = WriteTemporary(path, content, mode);
        File.Move(temporary, path, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>
    /// Like <see cref="WriteAtomically"/>, but never replaces an existing file: of several writers, the first rename
    /// wins (renameat2 with RENAME_NOREPLACE). False when <paramref name="path"/> already existed.
    /// </summary>
    public static bool CreateAtomically(string path, ReadOnlySpan<byte> content, UnixFileMode? mode = null)
    {
        // A name of its own: two writers must not share (and delete) each other's temporary file.
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N") + TempSuffix);
        WriteTemporary(temporary, content, mode, asIs: true);
        try
        {
            if (!RenameNoReplace(temporary, full))
                return false;
        }
        finally
        {
            File.Delete(temporary);
        }
        SyncDirectory(Path.GetDirectoryName(full)!);
        return true;
    }

    /// <summary>
    /// Flushes the finished <paramref name="temporary"/> to disk, renames it over <paramref name="target"/> and fsyncs
    /// the folder, best effort: for derived files (the lake), which a lost rename only makes the next run write again.
    /// </summary>
    public static void Publish(string temporary, string target)
    {
        using (var handle = File.OpenHandle(temporary, FileMode.Open, FileAccess.ReadWrite))
            RandomAccess.FlushToDisk(handle);
        File.Move(temporary, target, overwrite: true);
        TrySyncDirectory(Path.GetDirectoryName(Path.GetFullPath(target))!);
    }

    /// <summary>
    /// Makes the folder <paramref name="staged"/> become <paramref name="target"/> (folder fsync best effort, as in
    /// <see cref="Publish"/>). On Linux the two are exchanged
    /// in one renameat2(RENAME_EXCHANGE), so readers never find the target missing; the old content ends up
    /// at <paramref name="staged"/> and is deleted. Elsewhere the old folder is moved aside first.
    /// </summary>
    public static void ReplaceDirectory(string staged, string target)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(target))!;
        Directory.CreateDirectory(parent);
        if (Directory.Exists(target))
        {
            if (OperatingSystem.IsLinux() && TryRenameAt2(staged, target, RenameExchange))
            {
                Directory.Delete(staged, recursive: true);
                TrySyncDirectory(parent);
                return;
            }
            var aside = staged + ".old";
            Directory.Move(target, aside);
            Directory.Move(staged, target);
            Directory.Delete(aside, recursive: true);
        }
        else
        {
            Directory.Move(staged, target);
        }
        TrySyncDirectory(parent);
    }

    /// <summary>
    /// Gives the file <paramref name="existing"/> a second name, <paramref name="link"/> (a hard link, so no byte is
    /// copied): how an unchanged file of a folder being rebuilt is carried into the staged copy that replaces it.
    /// </summary>
    public static void Link(string existing, string link)
    {
        if (Native.Link(existing, link) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"link of '{existing}' as '{link}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    /// <summary>Creates a folder and its missing ancestors with <paramref name="mode"/> (before umask), making each new entry durable.</summary>
    public static void CreateDirectory(string path, UnixFileMode mode)
    {
        if (Directory.Exists(path))
            return;
        // A relative path's top folder has no parent name to create or sync: walk up the full path instead.
        path = Path.GetFullPath(path);
        var parent = Path.GetDirectoryName(path);
        if (parent is not null)
            CreateDirectory(parent, mode);
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(path);
        else
            Directory.CreateDirectory(path, mode);
        if (parent is not null)
            SyncDirectory(parent);
    }

    /// <summary>
    /// fsync on a directory makes the names in it (renames, creations, deletions) durable. .NET refuses to open a
    /// directory as a file handle, hence open(2) directly. Windows has no equivalent and needs none for NTFS renames.
    /// </summary>
    public static void SyncDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
            return;
        // O_RDONLY opens a directory on Linux; O_DIRECTORY's value differs between architectures.
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

    /// <summary><see cref="SyncDirectory"/> where losing the entry in a power cut costs only a repeat of the work: false instead of an exception.</summary>
    public static bool TrySyncDirectory(string path)
    {
        try
        {
            SyncDirectory(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Asks the kernel to start writing a range of the file to disk now, without waiting for it
    /// (sync_file_range with SYNC_FILE_RANGE_WRITE). This promises nothing about durability: it
    /// lets the disk work while more bytes arrive, so the fsync that follows finds little left to
    /// write. Best effort: where it is unsupported, the fsync does all the work.
    /// </summary>
    public static void StartWriteback(SafeFileHandle file, long offset, long count)
    {
        if (!OperatingSystem.IsLinux())
            return;
        _ = Native.SyncFileRange(file, offset, count, SyncFileRangeWrite);
    }

    // open(2) and renameat2(2) values, equal on every Linux architecture .NET supports.
    private const int ReadOnly = 0;
    private const int CloseOnExec = 0x80000;
    private const uint SyncFileRangeWrite = 2;
    private const int CurrentDirectory = -100; // AT_FDCWD
    private const uint RenameNoReplaceFlag = 1;
    private const uint RenameExchange = 2;

    /// <summary>Writes <paramref name="content"/> to a new temporary file beside <paramref name="path"/> (or at it, <paramref name="asIs"/>) and fsyncs it.</summary>
    private static string WriteTemporary(string path, ReadOnlySpan<byte> content, UnixFileMode? mode, bool asIs = false)
    {
        var temporary = asIs ? path : path + TempSuffix;
        // A stale one would keep its old mode: the create mode applies only to a new file.
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0 };
        if (mode is { } m && !OperatingSystem.IsWindows())
            options.UnixCreateMode = m;
        using var stream = new FileStream(temporary, options);
        stream.Write(content);
        stream.Flush(flushToDisk: true);
        return temporary;
    }

    /// <summary>Renames unless the target exists; false when it does.</summary>
    private static bool RenameNoReplace(string source, string target)
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                if (Native.RenameAt2(CurrentDirectory, source, CurrentDirectory, target, RenameNoReplaceFlag) == 0)
                    return true;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == 17) // EEXIST
                    return false;
                // EINVAL: a file system without RENAME_NOREPLACE; the portable way below.
                if (errno != 22)
                    throw new IOException($"renameat2 of '{source}' to '{target}' failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
            catch (EntryPointNotFoundException)
            {
                // libc older than glibc 2.28.
            }
        }
        try
        {
            File.Move(source, target, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(target))
        {
            return false;
        }
    }

    private static bool TryRenameAt2(string source, string target, uint flags)
    {
        try
        {
            return Native.RenameAt2(CurrentDirectory, source, CurrentDirectory, target, flags) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false; // libc older than glibc 2.28
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

        [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        public static partial int Close(int fd);

        [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
        public static partial int SyncFileRange(SafeFileHandle fd, long offset, long count, uint flags);

        [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int Link(string existing, string link);

        [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int RenameAt2(int oldDirectory, string oldPath, int newDirectory, string newPath, uint flags);
    }
}

using System.Runtime.InteropServices;

namespace Survey6.Aggregator.Storage;

/// <summary>
/// Publishing files and folders so that a reader sees the old version or the new one, never a mix: write under a
/// temporary name on the same file system, flush it to disk, then rename over the target.
/// </summary>
public static partial class AtomicFiles
{
    /// <summary>A hidden temp name beside <paramref name="target"/>, unique per writer so crashed writers never collide.</summary>
    public static string TempPathFor(string target, string runId) =>
        Path.Combine(Path.GetDirectoryName(target)!, "." + Path.GetFileName(target) + "." + runId + LakeLayout.TempSuffix);

    /// <summary>Flushes <paramref name="temp"/> to disk and renames it over <paramref name="target"/> (rename(2) replaces atomically).</summary>
    public static void Publish(string temp, string target)
    {
        using (var handle = File.OpenHandle(temp, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.FlushToDisk(handle);
        }
        File.Move(temp, target, overwrite: true);
        FlushDirectory(Path.GetDirectoryName(target)!);
    }

    /// <summary>
    /// Makes the folder <paramref name="staged"/> become <paramref name="target"/>. On Linux the two are exchanged
    /// in one renameat2(RENAME_EXCHANGE), so readers never find the partition missing; the old content ends up
    /// at <paramref name="staged"/> and is deleted. Elsewhere the old folder is moved aside first.
    /// </summary>
    public static void ReplaceDirectory(string staged, string target)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (Directory.Exists(target))
        {
            if (OperatingSystem.IsLinux() && TryExchange(staged, target))
            {
                Directory.Delete(staged, recursive: true);
                FlushDirectory(Path.GetDirectoryName(target)!);
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
        FlushDirectory(Path.GetDirectoryName(target)!);
    }

    /// <summary>Makes a rename durable: the directory entry itself has to reach the disk.</summary>
    public static void FlushDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
            return;
        int fd = Native.open(directory, Native.O_RDONLY);
        if (fd < 0)
            return;
        try
        {
            _ = Native.fsync(fd);
        }
        finally
        {
            _ = Native.close(fd);
        }
    }

    private static bool TryExchange(string a, string b)
    {
        try
        {
            return Native.renameat2(Native.AT_FDCWD, a, Native.AT_FDCWD, b, Native.RENAME_EXCHANGE) == 0;
        }
        catch (EntryPointNotFoundException)
        {
            return false; // libc older than glibc 2.28
        }
    }

    private static partial class Native
    {
        public const int AT_FDCWD = -100;
        public const uint RENAME_EXCHANGE = 2;
        public const int O_RDONLY = 0;

        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        public static partial int open(string path, int flags);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int fsync(int fd);

        [LibraryImport("libc", SetLastError = true)]
        public static partial int close(int fd);
    }
}

using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Survey6.Probe.Spool;

/// <summary>fsync of a directory, which .NET cannot open: makes a rename or a new file survive a power loss.</summary>
internal static partial class NativeFile
{
    public static void SyncDirectory(string path)
    {
        // O_RDONLY (0) opens a directory on Linux; O_DIRECTORY's value differs between architectures.
        var fd = Open(path, 0);
        if (fd < 0)
            throw new IOException($"cannot open {path} to sync it: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"cannot sync {path}: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}

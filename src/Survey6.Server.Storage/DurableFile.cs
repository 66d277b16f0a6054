using Survey6.Packets.Files;

namespace Survey6.Server.Storage;

/// <summary>
/// The store's file modes over the shared fsync discipline (<see cref="DurableFiles"/>): file contents, then the
/// directory entry that names them.
/// </summary>
internal static class DurableFile
{
    /// <summary>0640: the server and its group (an aggregator worker running as another user) read captures; nobody else does.</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    /// <summary>0750, for the same reason.</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute;

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

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> (0640) so that a crash leaves either the old file or the new one.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content) => DurableFiles.WriteAtomically(path, content, FileMode);

    /// <summary>Creates a folder and its missing ancestors (0750 before umask), making each new entry durable.</summary>
    public static void CreateDirectory(string path) => DurableFiles.CreateDirectory(path, DirectoryMode);

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
}

using System.Text;

namespace Survey6.Packets.Files;

/// <summary>Creates owner-only directories and writes files so that no reader ever sees a partial or world-readable key.</summary>
// Shared by the probe (its key and identity), the C&C (its CA, state and data directory) and the aggregator.
// Unix modes only: on Windows the files are made with the folder's ACL, which survey6 does not manage.
public static class SecureFiles
{
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode PublicFile = OwnerOnlyFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>Group and other bits: what an owner-only file or directory must not have.</summary>
    public const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>
    /// Creates <paramref name="path"/> and its missing parents owner-only (0700 before umask), each new entry made durable
    /// (<see cref="DurableFiles.CreateDirectory"/>); an existing folder keeps its mode.
    /// </summary>
    public static void CreateOwnerOnlyDirectory(string path) => DurableFiles.CreateDirectory(path, OwnerOnlyDirectory);

    /// <summary>Creates an empty file owner-only (0600) if there is none, so that a program creating it later (SQLite) does not pick the umask's mode.</summary>
    public static void CreateOwnerOnlyFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = OwnerOnlyFile;
        using var _ = new FileStream(path, options);
    }

    /// <summary>
    /// Writes a temporary file created with <paramref name="mode"/>, syncs it, renames it over <paramref name="path"/>
    /// and syncs the folder (<see cref="DurableFiles.WriteAtomically"/>).
    /// </summary>
    public static void WriteAtomically(string path, string text, UnixFileMode mode) =>
        DurableFiles.WriteAtomically(path, Encoding.UTF8.GetBytes(text), mode);
}

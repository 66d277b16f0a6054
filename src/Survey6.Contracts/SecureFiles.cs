namespace Survey6.Contracts;

/// <summary>Creates owner-only directories and writes files so that no reader ever sees a partial or world-readable key.</summary>
// Shared by the probe (its key and identity) and the C&C (its CA and state), which meet only through this assembly.
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public static class SecureFiles
{
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode PublicFile = OwnerOnlyFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public static void CreateOwnerOnlyDirectory(string path)
    {
        if (!Directory.Exists(path))
            Directory.CreateDirectory(path, OwnerOnlyDirectory);
    }

    /// <summary>Writes to a temporary file created with <paramref name="mode"/>, syncs it, then renames it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, string text, UnixFileMode mode)
    {
        var temporary = path + ".tmp";
        File.Delete(temporary); // a stale one would keep its old mode: UnixCreateMode applies only on creation
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode };
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}

namespace Survey6.Probe.Join;

/// <summary>Owner-only directories and atomically written files, so no reader sees a partial or world-readable key.</summary>
internal static class SecureFiles
{
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode PublicFile = OwnerOnlyFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    public static void CreateOwnerOnlyDirectory(string path)
    {
        if (!Directory.Exists(path))
            Directory.CreateDirectory(path, OwnerOnlyDirectory);
    }

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

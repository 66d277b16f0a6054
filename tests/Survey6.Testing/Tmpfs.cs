namespace Survey6.Testing;

/// <summary>A tmpfs of a given size mounted for one test and unmounted after it, whatever happens (needs root).</summary>
public sealed class Tmpfs : IDisposable
{
    /// <param name="size">As mount takes it: <c>2m</c>, <c>16m</c>.</param>
    public Tmpfs(string size)
    {
        Tool.RequireRoot();
        Path = Directory.CreateTempSubdirectory("s6tmpfs-").FullName;
        try
        {
            Tool.Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0700", "tmpfs", Path).Check();
        }
        catch
        {
            Directory.Delete(Path);
            throw;
        }
    }

    public string Path { get; }

    public void Dispose()
    {
        // A file a stopped process still holds keeps the mount busy: detach it then, so the directory goes anyway.
        if (Tool.Run("umount", Path).ExitCode != 0)
            Tool.Run("umount", "-l", Path);
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

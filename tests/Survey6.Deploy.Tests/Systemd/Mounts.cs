namespace Survey6.Deploy.Tests.Systemd;

internal static class Mounts
{
    /// <summary>Unmounts everything mounted at or below <paramref name="path"/>, deepest first; lazily if busy.</summary>
    public static void UnmountUnder(string path)
    {
        var root = Path.GetFullPath(path).TrimEnd('/');
        var mounted = File.ReadAllLines("/proc/self/mounts")
            .Select(l => l.Split(' ')[1].Replace("\\040", " ", StringComparison.Ordinal))
            .Where(m => m == root || m.StartsWith(root + "/", StringComparison.Ordinal))
            .Distinct()
            .OrderByDescending(m => m.Length);
        foreach (var mount in mounted)
        {
            if (Tool.Run("umount", mount).ExitCode != 0)
                Tool.Run("umount", "--lazy", mount);
        }
    }
}

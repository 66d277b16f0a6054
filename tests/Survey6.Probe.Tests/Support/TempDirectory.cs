namespace Survey6.Probe.Tests.Support;

/// <summary>A directory under /tmp removed with everything in it.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory(string prefix = "s6probe")
    {
        Path = Directory.CreateTempSubdirectory(prefix + "-").FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

namespace Survey6.Testing;

/// <summary>Locates the shared capture corpus (<c>shared/testdata</c>, a sibling of the repository folder).</summary>
public static class TestData
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    /// <summary>Full path of the <c>shared/testdata</c> folder (holds <c>pcaps/</c> and <c>oracle/</c>).</summary>
    public static string Root => RootPath.Value;

    public static string PcapsFolder => Path.Combine(Root, "pcaps");

    /// <summary>tshark's output per capture: <c>oracle/SOURCE/PATH.tsv</c> beside <c>pcaps/SOURCE/PATH</c>.</summary>
    public static string OracleFolder => Path.Combine(Root, "oracle");

    /// <summary>Full paths of every capture under <c>pcaps/</c>, in ordinal order.</summary>
    public static IEnumerable<string> AllCaptures() =>
        Directory.EnumerateFiles(PcapsFolder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    /// <summary>Path of a capture relative to <c>pcaps/</c>, with forward slashes (e.g. <c>tcpdump/empty.pcapng</c>).</summary>
    public static string RelativePath(string capture) => Path.GetRelativePath(PcapsFolder, capture).Replace('\\', '/');

    /// <summary>Full path of a capture given its path relative to <c>pcaps/</c>.</summary>
    public static string Capture(string relativePath) => Path.Combine(PcapsFolder, relativePath);

    /// <summary>The main tshark oracle (<c>oracle/&lt;relative path&gt;.tsv</c>) of a capture.</summary>
    public static string OracleFor(string capture) => Path.Combine(OracleFolder, RelativePath(capture) + ".tsv");

    /// <summary>The repository's folder (the one holding <c>Survey6.slnx</c>) above the test's output folder.</summary>
    public static string RepositoryRoot => RepositoryPath.Value;

    private static readonly Lazy<string> RepositoryPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Survey6.slnx")))
                return dir.FullName;
        }

        throw new DirectoryNotFoundException("Survey6.slnx not found above " + AppContext.BaseDirectory);
    });

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "testdata"));
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException($"no ../shared/testdata above {AppContext.BaseDirectory}");
    }
}

namespace Survey6.Aggregator.Tests.Support;

/// <summary>Locates the shared capture corpus (<c>shared/testdata</c>, a sibling of the repository folder).</summary>
public static class TestData
{
    private static readonly Lazy<string> RootPath = new(FindRoot);

    public static string PcapsFolder => Path.Combine(RootPath.Value, "pcaps");

    /// <summary>tshark's output per capture: <c>oracle/SOURCE/PATH.tsv</c> beside <c>pcaps/SOURCE/PATH</c>.</summary>
    public static string OracleFolder => Path.Combine(RootPath.Value, "oracle");

    /// <summary>Every capture of the corpus, in ordinal order.</summary>
    public static IReadOnlyList<string> AllCaptures() =>
        Directory.EnumerateFiles(PcapsFolder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

    public static string Capture(string relativePath) => Path.Combine(PcapsFolder, relativePath);

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

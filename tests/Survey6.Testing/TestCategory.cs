namespace Survey6.Testing;

/// <summary>
/// The test tiers, as <c>[Trait(TestCategory.Name, TestCategory.X)]</c> on a class (or <c>&lt;TestCategory&gt;</c> for a
/// whole project). <c>./test.sh --fast</c> runs <see cref="Unit"/> only; CI runs it first and stops on a failure.
/// </summary>
public static class TestCategory
{
    public const string Name = "Category";

    /// <summary>No root, no network namespaces, no browser, no packages: seconds each, on any developer machine.</summary>
    public const string Unit = "unit";

    /// <summary>Needs root: libpcap on veth pairs in namespaces, tmpfs mounts, other users.</summary>
    public const string Capture = "capture";

    /// <summary>Chromium driven by Playwright.</summary>
    public const string Browser = "browser";

    /// <summary>Builds and installs the .deb packages.</summary>
    public const string Packages = "packages";

    /// <summary>Debian containers booted with systemd.</summary>
    public const string Systemd = "systemd";
}

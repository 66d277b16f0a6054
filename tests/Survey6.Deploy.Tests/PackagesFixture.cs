namespace Survey6.Deploy.Tests;

/// <summary>
/// Builds the packages once per test run with deploy/debian/build (self-contained publish takes a
/// while): both at <see cref="Version"/> and, only when a test asks for it (the upgrade through the apt
/// repository), the probe again at <see cref="NewerVersion"/>.
/// </summary>
public sealed class PackagesFixture : IDisposable
{
    public const string Version = "0.9.1";
    public const string NewerVersion = "0.9.2";

    private readonly Lazy<string> _newerProbe;

    public PackagesFixture()
    {
        Repository = TestData.RepositoryRoot;
        Directory = System.IO.Directory.CreateTempSubdirectory("survey6-deploy-").FullName;
        var build = Path.Combine(Repository, "deploy", "debian", "build");
        var first = Tool.RunIn(TimeSpan.FromMinutes(25), Repository, build, "--version", Version, "--out", Directory).Check();
        Probe = Path.Combine(Directory, $"survey6-probe_{Version}_amd64.deb");
        Server = Path.Combine(Directory, $"survey6-server_{Version}_amd64.deb");
        Assert.Equal([Probe, Server], first.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        _newerProbe = new Lazy<string>(() =>
        {
            var second = Tool.RunIn(TimeSpan.FromMinutes(15), Repository, build, "--version", NewerVersion, "--out", Directory, "--only", "probe").Check();
            var newer = Path.Combine(Directory, $"survey6-probe_{NewerVersion}_amd64.deb");
            Assert.Equal(newer, second.Stdout.Trim());
            return newer;
        });
    }

    public string Repository { get; }

    public string Directory { get; }

    public string Probe { get; }

    public string Server { get; }

    public string NewerProbe => _newerProbe.Value;

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class PackagesCollection : ICollectionFixture<PackagesFixture>
{
    // Installing, purging and the apt repository all change this machine's package state: one at a time.
    public const string Name = "packages";
}

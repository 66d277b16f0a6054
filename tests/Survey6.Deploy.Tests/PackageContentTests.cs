using Survey6.Testing;
namespace Survey6.Deploy.Tests;

/// <summary>What the built packages hold, as dpkg-deb reads them.</summary>
[Collection(PackagesCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Packages)]
public sealed class PackageContentTests(PackagesFixture packages)
{
    // Server and aggregator assemblies and their dependencies: none may reach a capture host.
    private static readonly string[] NotOnProbes =
        ["Survey6.Server", "Survey6.Aggregator", "Survey6.Ingest", "Microsoft.AspNetCore", "Grpc.AspNetCore", "DuckDB", "duckdb", "Quartz", "Parquet", "Microsoft.Data.Sqlite", "SQLitePCL", "StackExchange.Redis", "prometheus-net", "Prometheus"];

    [Fact]
    public void The_probe_package_holds_the_probe_program_and_nothing_of_the_server()
    {
        var files = Contents(packages.Probe);
        Assert.Contains("./usr/lib/survey6-probe/survey6", files.Keys);
        Assert.Contains("./usr/lib/survey6-probe/Survey6.Probe.dll", files.Keys);
        Assert.Contains("./usr/lib/survey6-probe/libcoreclr.so", files.Keys); // self-contained: its own runtime
        Assert.Contains("./lib/systemd/system/survey6-probe.service", files.Keys);
        Assert.Contains("./etc/survey6/probe.json", files.Keys);
        var leaked = files.Keys.Where(f => NotOnProbes.Any(n => Path.GetFileName(f).StartsWith(n, StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.True(leaked.Count == 0, "server or aggregator files in the probe package:\n" + string.Join('\n', leaked));
        Assert.DoesNotContain(files.Keys, f => f.Contains("survey6-server", StringComparison.Ordinal));
    }

    [Fact]
    public void The_server_package_holds_the_whole_program()
    {
        var files = Contents(packages.Server);
        foreach (var file in new[] { "survey6", "Survey6.Server.dll", "Survey6.Aggregator.dll", "Survey6.Probe.dll", "Microsoft.AspNetCore.dll", "libcoreclr.so" })
            Assert.Contains("./usr/lib/survey6-server/" + file, files.Keys);
        Assert.Contains("./lib/systemd/system/survey6-server.service", files.Keys);
        Assert.Contains("./etc/survey6/server.json", files.Keys);
    }

    /// <summary>
    /// <c>demo</c> and the lab it runs (network namespaces, a process runner, apt installs, all as root) belong to the
    /// source tree and the tests, not to an operator's server: the packaged program is built without them.
    /// </summary>
    [Fact]
    public void The_server_package_carries_no_lab_and_no_demo_command()
    {
        Assert.DoesNotContain("./usr/lib/survey6-server/Survey6.Testbed.dll", Contents(packages.Server).Keys);
        var extracted = Directory.CreateTempSubdirectory("s6-server-deb-").FullName;
        try
        {
            Tool.Run("dpkg-deb", "-x", packages.Server, extracted).Check();
            var help = Tool.Run(Path.Combine(extracted, "usr/lib/survey6-server/survey6"), "--help").Check().Stdout;
            Assert.Matches(@"(?m)^\s+aggregate\s", help);
            Assert.DoesNotMatch(@"(?m)^\s+demo\s", help);
        }
        finally
        {
            Directory.Delete(extracted, recursive: true);
        }
    }

    /// <summary>
    /// survey6's own assemblies carry ReadyToRun code (deploy/debian/build publishes with it), so that a command or a
    /// scheduled run does not start by compiling them; an assembly published without it has no managed native header.
    /// </summary>
    [Theory]
    [InlineData("probe", "Survey6.Probe.dll")]
    [InlineData("server", "Survey6.Aggregator.dll")]
    public void Survey6s_assemblies_are_precompiled(string which, string mustHave)
    {
        var extracted = Directory.CreateTempSubdirectory("s6-r2r-deb-").FullName;
        try
        {
            Tool.Run("dpkg-deb", "-x", which == "probe" ? packages.Probe : packages.Server, extracted).Check();
            var program = Path.Combine(extracted, "usr", "lib", "survey6-" + which);
            var own = Directory.GetFiles(program, "Survey6.*.dll");
            Assert.Contains(Path.Combine(program, mustHave), own);
            foreach (var assembly in own)
            {
                using var pe = new System.Reflection.PortableExecutable.PEReader(File.OpenRead(assembly));
                Assert.True(pe.PEHeaders.CorHeader?.ManagedNativeHeaderDirectory.Size > 0, Path.GetFileName(assembly) + " holds IL only: not published ReadyToRun");
            }
        }
        finally
        {
            Directory.Delete(extracted, recursive: true);
        }
    }

    [Theory]
    [InlineData("probe")]
    [InlineData("server")]
    public void Every_file_is_root_owned_with_plain_modes(string which)
    {
        var files = Contents(which == "probe" ? packages.Probe : packages.Server);
        foreach (var (path, (mode, owner)) in files)
        {
            Assert.True(owner == "root/root", $"{path} is owned by {owner}");
            var program = path.EndsWith("/survey6", StringComparison.Ordinal) || path.EndsWith("/createdump", StringComparison.Ordinal);
            var expected = mode[0] == 'd' || program ? "rwxr-xr-x" : "rw-r--r--";
            Assert.True(mode[1..] == expected, $"{path} has mode {mode}");
        }
    }

    [Fact]
    public void Control_fields_name_the_version_the_dependencies_and_the_conffiles()
    {
        var probe = Field(packages.Probe);
        Assert.Equal("survey6-probe", probe["Package"]);
        Assert.Equal(PackagesFixture.Version, probe["Version"]);
        Assert.Equal("amd64", probe["Architecture"]);
        var probeDepends = probe["Depends"];
        Assert.Contains("libpcap0.8", probeDepends, StringComparison.Ordinal);
        Assert.Contains("adduser", probeDepends, StringComparison.Ordinal);
        Assert.DoesNotContain("dotnet", probeDepends, StringComparison.Ordinal); // no .NET on the host
        Assert.DoesNotContain("apt-utils", probeDepends, StringComparison.Ordinal);

        var server = Field(packages.Server);
        Assert.Equal("survey6-server", server["Package"]);
        foreach (var needed in new[] { "apt-utils", "gpg", "gpg-agent", "libssl3" })
            Assert.Contains(needed, server["Depends"].Split(',').Select(d => d.Trim().Split(' ')[0]));

        Assert.Equal("/etc/survey6/probe.json", Tool.Run("dpkg-deb", "-I", packages.Probe, "conffiles").Check().Stdout.Trim());
        Assert.Equal("/etc/survey6/server.json", Tool.Run("dpkg-deb", "-I", packages.Server, "conffiles").Check().Stdout.Trim());
        foreach (var script in new[] { "postinst", "prerm", "postrm" })
            Assert.StartsWith("#!/bin/sh", Tool.Run("dpkg-deb", "-I", packages.Probe, script).Check().Stdout, StringComparison.Ordinal);
    }

    private static Dictionary<string, string> Field(string deb)
    {
        var text = Tool.Run("dpkg-deb", "-f", deb).Check().Stdout;
        return text.Split('\n').Where(l => l.Length > 0 && !char.IsWhiteSpace(l[0]) && l.Contains(':', StringComparison.Ordinal))
            .Select(l => l.Split(':', 2)).ToDictionary(p => p[0], p => p[1].Trim(), StringComparer.Ordinal);
    }

    // path -> (mode string, owner/group) from dpkg-deb -c (tar tv format).
    private static Dictionary<string, (string Mode, string Owner)> Contents(string deb)
    {
        var files = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var line in Tool.Run("dpkg-deb", "-c", deb).Check().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            var path = parts[5].TrimEnd('/');
            files[path.Length == 1 ? "./" : path] = (parts[0], parts[1]);
        }

        return files;
    }
}

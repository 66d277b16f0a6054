using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>deploy/systemd/survey6-probe.service as systemd itself reads it.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class SystemdUnitTests
{
    private static readonly string Unit = Path.Combine(AppContext.BaseDirectory, "deploy", "survey6-probe.service");

    [Fact]
    public void Systemd_analyze_verifies_the_unit_without_a_word()
    {
        // verify checks that ExecStart's program exists: point it at the survey6 built with these tests.
        using var dir = new TempDirectory();
        var survey6 = Path.Combine(AppContext.BaseDirectory, "survey6");
        Assert.True(File.Exists(survey6), $"{survey6} was not built");
        var text = File.ReadAllText(Unit);
        // The Debian package's own copy of the program (deploy/debian/build), not /usr/bin/survey6, which
        // the server package may provide when both are installed.
        Assert.Contains("ExecStart=/usr/lib/survey6-probe/survey6 ", text, StringComparison.Ordinal);
        var copy = Path.Combine(dir.Path, "survey6-probe.service");
        File.WriteAllText(copy, text.Replace("ExecStart=/usr/lib/survey6-probe/survey6 ", $"ExecStart={survey6} ", StringComparison.Ordinal));

        var result = Tool.Run("systemd-analyze", "verify", copy);

        Assert.True(result.ExitCode == 0 && result.Stdout.Length == 0 && result.Stderr.Length == 0,
            $"systemd-analyze verify exited {result.ExitCode}:\n{result.Stdout}{result.Stderr}");
    }

    [Fact]
    public void The_unit_is_a_notify_service_with_only_the_capture_capabilities()
    {
        var settings = File.ReadLines(Unit)
            .Where(l => l.Contains('=', StringComparison.Ordinal) && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2))
            .ToLookup(p => p[0], p => p[1]);
        Assert.Equal("notify", settings["Type"].Single());
        Assert.Equal("survey6", settings["User"].Single());
        Assert.Equal("CAP_NET_RAW CAP_NET_ADMIN", settings["AmbientCapabilities"].Single());
        Assert.Equal("CAP_NET_RAW CAP_NET_ADMIN", settings["CapabilityBoundingSet"].Single());
        Assert.Equal("strict", settings["ProtectSystem"].Single());
        Assert.Equal("/var/lib/survey6/probe", settings["ReadWritePaths"].Single());
        Assert.Equal("yes", settings["NoNewPrivileges"].Single());
        Assert.Equal("on-failure", settings["Restart"].Single());
        Assert.Contains("--state-dir /var/lib/survey6/probe", settings["ExecStart"].Single(), StringComparison.Ordinal);
    }
}

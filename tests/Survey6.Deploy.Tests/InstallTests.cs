using Survey6.Testing;
namespace Survey6.Deploy.Tests;

/// <summary>
/// Installs both packages on this machine with apt-get (CI runs as root on a throwaway machine),
/// checks what they set up, then removes and purges them and checks that nothing is left.
/// Runs where systemd is not PID 1 too: the maintainer scripts must cope.
/// </summary>
[Collection(PackagesCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Packages)]
public sealed class InstallTests(PackagesFixture packages)
{
    [Fact]
    public void Install_verify_remove_and_purge_both_packages()
    {
        Installed.PurgeAll();
        try
        {
            Tool.AptGet("install", packages.Probe, packages.Server).Check();

            var user = Tool.Run("getent", "passwd", "survey6").Check().Stdout.Trim().Split(':');
            Assert.True(int.Parse(user[2], System.Globalization.CultureInfo.InvariantCulture) < 1000, "survey6 is not a system user: " + string.Join(':', user));
            Assert.Equal("/usr/sbin/nologin", user[6]);
            Assert.Equal("survey6 survey6 750", Stat("/var/lib/survey6/probe"));
            Assert.Equal("survey6 survey6 700", Stat("/var/lib/survey6/server"));
            Assert.Equal("root root 644", Stat("/etc/survey6/probe.json"));
            Assert.Equal("root root 755", Stat("/usr/lib/survey6-probe/survey6"));
            Assert.Contains("/etc/survey6/probe.json", Tool.Run("dpkg-query", "-W", "-f=${Conffiles}", "survey6-probe").Check().Stdout, StringComparison.Ordinal);
            Assert.Contains("/etc/survey6/server.json", Tool.Run("dpkg-query", "-W", "-f=${Conffiles}", "survey6-server").Check().Stdout, StringComparison.Ordinal);

            // Both programs run from their installed paths without a .NET on the host (DOTNET_ROOT is no help to a self-contained app).
            Assert.Equal(PackagesFixture.Version, Tool.Run("/usr/lib/survey6-probe/survey6", "--version").Check().Stdout.Trim());
            Assert.Equal(PackagesFixture.Version, Tool.Run("/usr/bin/survey6", "--version").Check().Stdout.Trim());
            // With both installed, /usr/bin/survey6 is the server's (every command); the probe's has only `probe`.
            Assert.Equal("/usr/lib/survey6-server/survey6", Tool.Run("readlink", "-f", "/usr/bin/survey6").Check().Stdout.Trim());
            Assert.NotEqual(0, Tool.Run("/usr/lib/survey6-probe/survey6", "server", "probes").ExitCode);
            // The service user can use its state directory: status of a probe that is not running (LSB 3).
            var status = Tool.Run("runuser", "-u", "survey6", "--", "/usr/lib/survey6-probe/survey6", "probe", "status", "--state-dir", "/var/lib/survey6/probe");
            Assert.True(status.ExitCode == 3, status.Output);
            Assert.Contains("not running", status.Stdout, StringComparison.Ordinal);

            // systemd reads both units without a word (ExecStart now points at the installed programs).
            var verify = Tool.Run("systemd-analyze", "verify", "/lib/systemd/system/survey6-probe.service", "/lib/systemd/system/survey6-server.service");
            Assert.True(verify.ExitCode == 0 && verify.Output.Length == 0, verify.Output);
            // The server is enabled on install; the probe waits for its join.
            Assert.True(File.Exists("/etc/systemd/system/multi-user.target.wants/survey6-server.service"));
            Assert.False(File.Exists("/etc/systemd/system/multi-user.target.wants/survey6-probe.service"));

            // remove keeps configuration and data; purge takes them, and the last package the user.
            File.AppendAllText("/etc/survey6/probe.json", "\n");
            File.WriteAllText("/var/lib/survey6/probe/marker", "data");
            Tool.AptGet("remove", "survey6-probe").Check();
            Assert.False(File.Exists("/usr/lib/survey6-probe/survey6"));
            Assert.True(File.Exists("/etc/survey6/probe.json"));
            Assert.True(File.Exists("/var/lib/survey6/probe/marker"));
            Assert.Equal("/usr/lib/survey6-server/survey6", Tool.Run("readlink", "-f", "/usr/bin/survey6").Check().Stdout.Trim());
            Tool.AptGet("purge", "survey6-probe").Check();
            Assert.False(File.Exists("/etc/survey6/probe.json"));
            Assert.False(Directory.Exists("/var/lib/survey6/probe"));
            Assert.Equal(0, Tool.Run("getent", "passwd", "survey6").ExitCode); // the server still needs it

            Tool.AptGet("purge", "survey6-server").Check();
            foreach (var gone in new[] { "/etc/survey6", "/var/lib/survey6", "/usr/lib/survey6-server", "/usr/bin/survey6", "/etc/systemd/system/multi-user.target.wants/survey6-server.service" })
                Assert.False(Path.Exists(gone), gone + " is left after purge");
            Assert.NotEqual(0, Tool.Run("getent", "passwd", "survey6").ExitCode);
            Assert.NotEqual(0, Tool.Run("getent", "group", "survey6").ExitCode);
            Assert.NotEqual(0, Tool.Run("update-alternatives", "--query", "survey6").ExitCode);
        }
        finally
        {
            Installed.PurgeAll();
        }
    }

    private static string Stat(string path) => Tool.Run("stat", "-c", "%U %G %a", path).Check().Stdout.Trim();
}

internal static class Installed
{
    /// <summary>Purges what an earlier, interrupted run may have left installed.</summary>
    public static void PurgeAll()
    {
        var present = new[] { "survey6-probe", "survey6-server" }
            .Where(p => Tool.Run("dpkg-query", "-W", "-f=${db:Status-Status}", p).Stdout.Trim() is "installed" or "config-files" or "half-configured" or "unpacked")
            .ToArray();
        if (present.Length > 0)
            Tool.AptGet(["purge", .. present]).Check();
    }
}

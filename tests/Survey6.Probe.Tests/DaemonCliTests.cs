using System.Globalization;
using System.Text.Json;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary><c>survey6 probe suspend|resume|status</c> against a daemon running as its own process.</summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class DaemonCliTests
{
    [Fact]
    public async Task Suspend_releases_the_interface_resume_captures_again_and_the_flag_survives_a_restart()
    {
        using var lab = new NetworkLab();
        using var dir = new TempDirectory();
        var state = dir.Combine("state");
        var config = DaemonProcess.WriteConfig(dir.Path, lab.HostInterface);

        using (var daemon = await DaemonProcess.StartAsync(config, state))
        {
            var (code, text, _) = await DaemonProcess.CliAsync("probe", "status", "--state-dir", state);
            Assert.Equal(0, code);
            Assert.Contains("state:      capturing", text, StringComparison.Ordinal);
            Assert.Contains("drops:      kernel 0, interface 0, queue 0, disk 0", text, StringComparison.Ordinal);
            Assert.Contains("policy evict-oldest", text, StringComparison.Ordinal);
            Assert.True(PacketSocketsOn(lab.HostInterface) > 0);
            lab.Ping(lab.HostAddress, 3);
            await ProbeHarness.WaitUntilAsync(() => daemon.Status().Capture.Written >= 6, TimeSpan.FromSeconds(10), "the echoes");

            (code, text, _) = await DaemonProcess.CliAsync("probe", "suspend", "--state-dir", state, "--reason", "maintenance window");
            Assert.Equal(0, code);
            Assert.Equal("suspended: maintenance window", text.Trim());
            Assert.Equal(0, PacketSocketsOn(lab.HostInterface)); // the interface is released
            Assert.Null(daemon.Status().Spool.CurrentFile); // the open file was closed
            lab.Ping(lab.HostAddress, 4); // not captured

            (code, text, _) = await DaemonProcess.CliAsync("probe", "status", "--json", "--state-dir", state);
            Assert.Equal(0, code);
            using var json = JsonDocument.Parse(text);
            Assert.Equal("suspended", json.RootElement.GetProperty("state").GetString());
            Assert.Equal("maintenance window", json.RootElement.GetProperty("state_reason").GetString());
            Assert.Equal(1, json.RootElement.GetProperty("spool").GetProperty("files").GetInt32());
            daemon.Terminate();
        }

        // Restarted: still suspended, the interface left alone.
        using (var daemon = await DaemonProcess.StartAsync(config, state))
        {
            Assert.Equal("suspended", daemon.Status().State);
            Assert.Equal(0, PacketSocketsOn(lab.HostInterface));

            var (code, text, _) = await DaemonProcess.CliAsync("probe", "resume", "--state-dir", state);
            Assert.Equal(0, code);
            Assert.Equal("capturing", text.Trim());
            Assert.True(PacketSocketsOn(lab.HostInterface) > 0);
            lab.Ping(lab.HostAddress, 2);
            await ProbeHarness.WaitUntilAsync(() => daemon.Status().Capture.Written >= 4, TimeSpan.FromSeconds(10), "the echoes");
            daemon.Terminate();
        }

        var frames = SpoolContents.Read(Path.Combine(state, "spool")).SelectMany(f => f.Frames).ToList();
        Assert.Equal(3 + 2, frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        var reasons = SpoolContents.Read(Path.Combine(state, "spool")).Select(f => f.CloseReason).ToList();
        Assert.Equal(["suspend", "stop"], reasons);

        // Without a daemon: status says so (exit 3), suspend and resume only set and clear the flag.
        var offline = await DaemonProcess.CliAsync("probe", "status", "--state-dir", state);
        Assert.Equal(3, offline.ExitCode);
        Assert.Contains("not running", offline.Output, StringComparison.Ordinal);
        Assert.Contains("2 files", offline.Output, StringComparison.Ordinal);
        Assert.Equal(0, (await DaemonProcess.CliAsync("probe", "suspend", "--state-dir", state)).ExitCode);
        Assert.True(File.Exists(Path.Combine(state, "suspended")));
        Assert.Contains("suspended", (await DaemonProcess.CliAsync("probe", "status", "--state-dir", state)).Output, StringComparison.Ordinal);
        Assert.Equal(0, (await DaemonProcess.CliAsync("probe", "resume", "--state-dir", state)).ExitCode);
        Assert.False(File.Exists(Path.Combine(state, "suspended")));
    }

    [Fact]
    public async Task The_control_socket_is_group_writable_only_and_a_second_daemon_is_refused()
    {
        using var lab = new NetworkLab();
        using var dir = new TempDirectory();
        var state = dir.Combine("state");
        var config = DaemonProcess.WriteConfig(dir.Path, lab.HostInterface);
        using var daemon = await DaemonProcess.StartAsync(config, state);

        var mode = File.GetUnixFileMode(Path.Combine(state, "probe.sock"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, mode);

        var second = await DaemonProcess.CliAsync("probe", "run", "--config", config, "--state-dir", state);
        Assert.Equal(Survey6.Cli.ExitCodes.Conflict, second.ExitCode);
        Assert.Contains("a probe daemon (PID ", second.Error, StringComparison.Ordinal);
        Assert.Contains($") is running on {state}; stop it first", second.Error, StringComparison.Ordinal);
        Assert.Equal("capturing", daemon.Status().State); // the first one is untouched
        daemon.Terminate();
    }

    /// <summary>AF_PACKET sockets bound to the interface (/proc/net/packet, column Iface).</summary>
    private static int PacketSocketsOn(string name)
    {
        var index = File.ReadAllText($"/sys/class/net/{name}/ifindex").Trim();
        return File.ReadLines("/proc/net/packet").Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f.Length > 4 && f[4] == index.ToString(CultureInfo.InvariantCulture));
    }
}

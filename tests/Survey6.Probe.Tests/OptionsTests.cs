using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Survey6.Probe.Daemon;
using Survey6.Probe.Spool;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>Bad settings stop the daemon at start with a message that names them.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class OptionsTests
{
    [Theory]
    [InlineData("Probe:Capture:Filter", "ip6 and and", "does not compile")]
    [InlineData("Probe:Capture:SnapLength", "10", "SnapLength")]
    [InlineData("Probe:Spool:MaxSpoolBytes", "1048576", "MaxSpoolBytes")]
    [InlineData("Probe:Spool:RotateAge", "00:00:00.5", "RotateAge")]
    [InlineData("Probe:Location", "north pole", "Probe:Location")]
    [InlineData("Probe:Labels:bad key", "x", "Probe:Labels")]
    [InlineData("Probe:Upload:QuietPeriod", "-00:00:01", "Probe:Upload:QuietPeriod")]
    [InlineData("Probe:Upload:SampleInterval", "00:00:00.001", "Probe:Upload:SampleInterval")]
    [InlineData("Probe:Upload:MaxBytesPerSecond", "-1", "Probe:Upload:MaxBytesPerSecond")]
    [InlineData("Probe:Capture:OwnTrafficResolveInterval", "00:00:01", "Probe:Capture:OwnTrafficResolveInterval")]
    public async Task Invalid_settings_fail_the_start(string key, string value, string message)
    {
        using var state = new TempDirectory();
        using var host = ProbeDaemonHosting.CreateBuilder(null, ProbeHarness.Settings(state.Path, "lo", (key, value))).Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("evict-oldest", DiskPolicy.EvictOldest)]
    [InlineData("pause-capture", DiskPolicy.PauseCapture)]
    [InlineData("PauseCapture", DiskPolicy.PauseCapture)]
    public void Disk_policy_reads_as_the_docs_write_it(string text, DiskPolicy expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Probe:Spool:DiskPolicy", text)]).Build();
        Assert.Equal(expected, configuration.GetSection(SpoolOptions.SectionName).Get<SpoolOptions>()!.DiskPolicy);
    }

    [Fact]
    public void Defaults_are_the_documented_ones()
    {
        var capture = new Capture.CaptureOptions();
        var spool = new SpoolOptions();
        Assert.Equal(["any"], capture.EffectiveInterfaces);
        Assert.Equal(
            "ip6 or (ip proto 41) or (udp port 3544) or (ip and udp and ((udp[8] & 0xf0 = 0x60 and udp[12:2] + 48 = udp[4:2])"
            + " or (udp[8:2] = 0 and udp[16] & 0xf0 = 0x60 and udp[20:2] + 56 = udp[4:2])"
            + " or (udp[8:2] = 1 and (udp[21 + udp[10] + udp[11]] & 0xf0 = 0x60 or udp[21 + udp[10] + udp[11]:2] = 0))))",
            capture.EffectiveFilter);
        Assert.True(capture.ExcludeOwnTraffic);
        Assert.Equal(TimeSpan.FromMinutes(5), capture.OwnTrafficResolveInterval);
        Assert.Equal(262144, capture.EffectiveSnapLength);
        Assert.Equal(128, new Capture.CaptureOptions { PrivacyMode = true }.EffectiveSnapLength);
        Assert.Equal(64L << 20, spool.RotateSizeBytes);
        Assert.Equal(TimeSpan.FromMinutes(5), spool.RotateAge);
        Assert.Equal(DiskPolicy.EvictOldest, spool.DiskPolicy);
    }
}

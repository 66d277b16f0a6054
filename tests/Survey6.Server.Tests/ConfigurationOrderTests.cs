using Microsoft.Extensions.Configuration;
using Survey6.Probe.Daemon;
using Survey6.Server.Hosting;

namespace Survey6.Server.Tests;

/// <summary>
/// The server's and the probe's hosts, as <c>server run</c> and <c>probe run</c> build them, read their settings in the
/// documented order (docs/operations.md, "Where settings come from"): the host's own environment source sits above
/// the <c>--config</c> file, command-line options above both.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ConfigurationOrderTests : IDisposable
{
    private readonly ConfigurationScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void The_server_host_reads_config_file_then_environment_then_command_line()
    {
        var (config, overrides) = Arrange();

        var configuration = ServerApplication.CreateBuilder(config, overrides).Configuration;

        AssertOrder(configuration);
        Assert.Equal("Warning", configuration["Logging:LogLevel:Microsoft.AspNetCore"]);
        Assert.Equal("Information", configuration["Logging:LogLevel:Default"]);
    }

    [Fact]
    public void The_probe_host_reads_config_file_then_environment_then_command_line()
    {
        var (config, overrides) = Arrange();
        overrides["Probe:StateDirectory"] = Path.Combine(_scratch.Folder.FullName, "state");

        var configuration = ProbeDaemonHosting.CreateBuilder(config, overrides).Configuration;

        AssertOrder(configuration);
        Assert.Equal("Warning", configuration["Logging:LogLevel:Microsoft.Hosting.Lifetime"]);
    }

    [Fact]
    public void Commands_that_only_read_the_servers_settings_see_the_same_order()
    {
        var (config, overrides) = Arrange();

        AssertOrder(ServerConfiguration.Layers(config, overrides).Build());
    }

    private (string Config, Dictionary<string, string?> Overrides) Arrange()
    {
        var config = _scratch.WriteSection("config.json", ("File", "file"), ("Environment", "file"), ("CommandLine", "file"));
        _scratch.SetVariable("Environment", "environment");
        _scratch.SetVariable("CommandLine", "environment");
        return (config, new Dictionary<string, string?> { [_scratch.Key("CommandLine")] = "command line" });
    }

    private void AssertOrder(IConfiguration configuration)
    {
        Assert.Equal("file", configuration[_scratch.Key("File")]);
        Assert.Equal("environment", configuration[_scratch.Key("Environment")]);
        Assert.Equal("command line", configuration[_scratch.Key("CommandLine")]);
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Json;
using Survey6.Contracts.Configuration;

namespace Survey6.Contracts.Tests;

/// <summary>
/// The one order in which the probe, the server and the aggregator read their settings (docs/operations.md, "Where
/// settings come from"), and what an operator sees when a file is wrong.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ConfigurationLayersTests : IDisposable
{
    private readonly ConfigurationScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Each_layer_overrides_the_ones_beneath_defaults_system_file_config_file_environment_command_line()
    {
        var system = _scratch.WriteSection("system.json", ("System", "system"), ("Config", "system"), ("Environment", "system"), ("CommandLine", "system"));
        var config = _scratch.WriteSection("config.json", ("Config", "config"), ("Environment", "config"), ("CommandLine", "config"));
        _scratch.SetVariable("Environment", "environment");
        _scratch.SetVariable("CommandLine", "environment");
        var layers = new ConfigurationLayers("test")
        {
            Defaults = Keys(("Default", "default"), ("System", "default"), ("Config", "default"), ("Environment", "default"), ("CommandLine", "default")),
            SystemFile = system,
            ConfigFile = config,
            Overrides = Keys(("CommandLine", "command line")),
        };

        var root = layers.Build();

        Assert.Equal("default", root[_scratch.Key("Default")]);
        Assert.Equal("system", root[_scratch.Key("System")]);
        Assert.Equal("config", root[_scratch.Key("Config")]);
        Assert.Equal("environment", root[_scratch.Key("Environment")]);
        Assert.Equal("command line", root[_scratch.Key("CommandLine")]);
    }

    [Fact]
    public void A_host_builders_own_environment_source_is_moved_above_the_config_file()
    {
        // Host.CreateApplicationBuilder adds the environment before the program adds its files.
        var builder = new ConfigurationBuilder().AddEnvironmentVariables();
        _scratch.SetVariable("Key", "environment");
        var config = _scratch.WriteSection("config.json", ("Key", "config"));

        var root = new ConfigurationLayers("test") { SystemFile = null, ConfigFile = config }.AddTo(builder).Build();

        Assert.Equal("environment", root[_scratch.Key("Key")]);
        Assert.Single(builder.Sources, s => s is EnvironmentVariablesConfigurationSource);
    }

    [Fact]
    public void A_missing_system_file_is_no_layer_and_the_system_file_is_read_once_when_config_names_it()
    {
        var absent = new ConfigurationLayers("test") { SystemFile = Path.Combine(_scratch.Folder.FullName, "absent.json"), Defaults = Keys(("Key", "default")) };
        Assert.Equal("default", absent.Build()[_scratch.Key("Key")]);

        var both = _scratch.WriteSection("both.json", ("Key", "file"));
        var root = new ConfigurationLayers("test") { SystemFile = both, ConfigFile = both }.Build();
        Assert.Equal("file", root[_scratch.Key("Key")]);
        Assert.Single(root.Providers, p => p is JsonConfigurationProvider);
    }

    [Fact]
    public void A_programs_defaults_override_the_common_ones_and_keep_the_rest()
    {
        var root = new ConfigurationLayers("test")
        {
            SystemFile = null,
            Defaults = new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Warning", ["Logging:LogLevel:Grpc"] = "Error" },
        }.Build();

        Assert.Equal("Warning", root["Logging:LogLevel:Default"]);
        Assert.Equal("Error", root["Logging:LogLevel:Grpc"]);
        Assert.Equal("Warning", root["Logging:LogLevel:Microsoft.Hosting.Lifetime"]);
    }

    [Fact]
    public void The_system_file_of_a_program_is_in_etc_survey6()
    {
        Assert.Equal("/etc/survey6/probe.json", new ConfigurationLayers("probe").SystemFile);
        Assert.Equal("/etc/survey6/server.json", new ConfigurationLayers("server").SystemFile);
        Assert.Equal("/etc/survey6/aggregator.json", new ConfigurationLayers("aggregator").SystemFile);
    }

    [Fact]
    public void A_config_file_that_does_not_exist_stops_the_start_naming_the_file()
    {
        var missing = Path.Combine(_scratch.Folder.FullName, "nope.json");

        var e = Assert.Throws<FileNotFoundException>(() => new ConfigurationLayers("test") { ConfigFile = missing }.Build());

        Assert.Equal($"configuration file {missing} does not exist", e.Message);
    }

    [Fact]
    public void A_config_file_that_is_not_json_stops_the_start_naming_the_file_and_the_line()
    {
        var bad = _scratch.Write("bad.json", "{\n  \"Server\": {\n    \"GrpcListen\": *:7443\n  }\n}\n");

        var e = Assert.Throws<FormatException>(() => new ConfigurationLayers("test") { ConfigFile = bad }.Build());

        Assert.StartsWith($"configuration file {bad} is not valid JSON at line 3, column 19: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_system_file_that_is_not_json_stops_the_start_too()
    {
        var bad = _scratch.Write("system.json", "{ \"Probe\": { \"StateDirectory\": ");

        var e = Assert.Throws<FormatException>(() => new ConfigurationLayers("test") { SystemFile = bad }.Build());

        Assert.Contains($"configuration file {bad} is not valid JSON at line 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_that_is_not_an_object_of_sections_is_refused_and_comments_and_trailing_commas_are_not()
    {
        var array = _scratch.Write("array.json", "[1, 2]");
        var e = Assert.Throws<FormatException>(() => new ConfigurationLayers("test") { ConfigFile = array }.Build());
        Assert.Equal($"configuration file {array} holds a JSON array, not an object of sections ({{ \"Section\": {{ ... }} }})", e.Message);

        var lenient = _scratch.Write("lenient.json", $"// written by hand\n{{ \"{_scratch.Section}\": {{ \"Key\": \"value\", }}, }}\n");
        Assert.Equal("value", new ConfigurationLayers("test") { ConfigFile = lenient }.Build()[_scratch.Key("Key")]);
    }

    [Fact]
    public void A_directory_given_as_the_config_file_is_refused_naming_it()
    {
        var folder = _scratch.Folder.FullName;

        var e = Assert.Throws<FormatException>(() => new ConfigurationLayers("test") { ConfigFile = folder }.Build());

        Assert.Equal($"configuration file {folder} is a directory; it names a JSON file", e.Message);
    }

    private Dictionary<string, string?> Keys(params (string Key, string Value)[] pairs) =>
        pairs.ToDictionary(p => _scratch.Key(p.Key), p => (string?)p.Value);
}

using Microsoft.Extensions.Configuration;
using Survey6.Server.Hosting;
using Survey6.Server.Options;

namespace Survey6.Server.Control;

/// <summary>The health and policy settings as the server would see them, for commands that work on state.db without it.</summary>
public static class ControlConfiguration
{
    public static (HealthOptions Health, PolicyOptions InitialPolicy) Load(string? configFile, IReadOnlyDictionary<string, string?>? overrides)
    {
        var configuration = ServerConfiguration.Layers(configFile, overrides).Build();
        return (configuration.GetSection(HealthOptions.SectionName).Get<HealthOptions>() ?? new HealthOptions(),
                configuration.GetSection(PolicyOptions.SectionName).Get<PolicyOptions>() ?? new PolicyOptions());
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Survey6.Aggregator;

namespace Survey6.Cli;

/// <summary>Builds the aggregator's host for the CLI: configuration, stderr logging, services, optionally the scheduler.</summary>
internal static class AggregatorHosting
{
    /// <summary>
    /// Configuration comes from <c>appsettings.json</c> in the working folder, then environment variables
    /// (<c>Aggregator__Schedules__Parse=...</c>), then the command-line folders, which win.
    /// </summary>
    public static IHost Build(string? dataDir, string? lakeDir, bool includeOpen, bool scheduled, LogLevel minimumLevel)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = Directory.GetCurrentDirectory(),
            DisableDefaults = false,
        });
        var overrides = new Dictionary<string, string?>();
        if (dataDir is not null)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.DataDirectory)}"] = Path.GetFullPath(dataDir);
        if (lakeDir is not null)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.LakeDirectory)}"] = Path.GetFullPath(lakeDir);
        if (includeOpen)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.IncludeOpenPartitions)}"] = "true";
        builder.Configuration.AddInMemoryCollection(overrides);

        // Logs go to stderr so that stdout carries only results (status --json, query output).
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.Logging.AddFilter("Quartz", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

        builder.Services.AddSurvey6Aggregator(builder.Configuration);
        if (scheduled)
            builder.Services.AddSurvey6AggregatorScheduling(builder.Configuration);
        return builder.Build();
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Survey6.Aggregator;
using Survey6.Contracts.Configuration;
using Survey6.Data;

namespace Survey6.Cli;

/// <summary>Builds the aggregator's host for the CLI: configuration, stderr logging, services, optionally the scheduler.</summary>
internal static class AggregatorHosting
{
    /// <summary>
    /// The aggregator's settings come in the order every program shares (<see cref="ConfigurationLayers"/>); the
    /// command-line folders are its overrides.
    /// </summary>
    public static IHost Build(string? dataDir, string? lakeDir, bool includeOpen, bool scheduled, LogLevel minimumLevel,
        CaptureSourceKind? source = null, string? workerName = null, string? configFile = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            // Not the working directory: its appsettings.json is read (below) only in place of --config.
            ContentRootPath = AppContext.BaseDirectory,
            DisableDefaults = false,
        });
        var overrides = new Dictionary<string, string?>();
        if (dataDir is not null)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.DataDirectory)}"] = Path.GetFullPath(dataDir);
        if (lakeDir is not null)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.LakeDirectory)}"] = Path.GetFullPath(lakeDir);
        if (includeOpen)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.IncludeOpenPartitions)}"] = "true";
        if (source is { } kind)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.Source)}"] = kind.ToString();
        if (workerName is not null)
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.WorkerName)}"] = workerName;
        // The command's level as the default, so that it holds over the common one and Logging__LogLevel__Default still wins.
        var defaults = new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = minimumLevel.ToString() };
        (Configuration(configFile, overrides) with { Defaults = defaults }).AddTo(builder.Configuration);

        // Logs go to stderr so that stdout carries only results (status --json, query output).
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(minimumLevel);
        builder.Logging.AddFilter("Quartz", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);

        builder.Services.AddSurvey6Aggregator(builder.Configuration);
        if (SourceOf(builder.Configuration) == CaptureSourceKind.Queue)
            builder.Services.AddSurvey6AggregatorQueue(builder.Configuration);
        if (scheduled)
            builder.Services.AddSurvey6AggregatorScheduling(builder.Configuration);
        return builder.Build();
    }

    /// <summary>
    /// What <c>aggregate once --source auto</c> means: the ingest queue when there is one to drain (a Redis queue is
    /// configured, or the data folder holds the C&amp;C's <c>ingest.db</c>), else a scan of <c>DATA/captures</c>.
    /// </summary>
    public static CaptureSourceKind ResolveAuto(string? dataDir, string? configFile = null)
    {
        var configuration = Configuration(configFile).Build();
        if (string.Equals(configuration["Ingest:Kind"], "redis", StringComparison.OrdinalIgnoreCase))
            return CaptureSourceKind.Queue;
        var data = DataDirectory(dataDir, configuration);
        var sqlite = configuration["Ingest:Sqlite:Path"] ?? new DataLayout(data).IngestDatabase;
        return File.Exists(sqlite) ? CaptureSourceKind.Queue : CaptureSourceKind.Directory;
    }

    /// <summary>The data folder a command works on: <c>--data-dir</c>, else <c>Aggregator:DataDirectory</c>, else <c>./data</c>.</summary>
    public static string DataDirectory(string? dataDir, string? configFile = null) => DataDirectory(dataDir, Configuration(configFile).Build());

    private static string DataDirectory(string? dataDir, IConfiguration configuration) =>
        dataDir ?? configuration[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.DataDirectory)}"] ?? new AggregatorOptions().DataDirectory;

    /// <summary>
    /// The aggregator's configuration sources: /etc/survey6/aggregator.json, <paramref name="configFile"/> (without one,
    /// <c>appsettings.json</c> in the working folder when there is one, as before <c>--config</c> existed), the
    /// environment, <paramref name="overrides"/>.
    /// </summary>
    public static ConfigurationLayers Configuration(string? configFile, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var workingFolderFile = Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json");
        return new("aggregator")
        {
            ConfigFile = configFile ?? (File.Exists(workingFolderFile) ? workingFolderFile : null),
            Overrides = overrides,
        };
    }

    private static CaptureSourceKind SourceOf(ConfigurationManager configuration) =>
        Enum.TryParse<CaptureSourceKind>(configuration[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.Source)}"], ignoreCase: true, out var kind)
            ? kind
            : new AggregatorOptions().Source;

    /// <summary>
    /// The aggregator inside <c>survey6 server run</c>: same data folder (captures in, <c>DATA/lake</c> out, the
    /// ledger and scheduler store beside them), fed by the server's own ingest queue, on the Quartz schedules. Settings
    /// come from the server's configuration sources (section <c>Aggregator</c>).
    /// </summary>
    public static void AddToServer(IHostApplicationBuilder builder, string serverDataDirectory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var overrides = new Dictionary<string, string?>
        {
            [$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.Source)}"] = nameof(CaptureSourceKind.Queue),
        };
        if (string.IsNullOrWhiteSpace(builder.Configuration[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.DataDirectory)}"]))
            overrides[$"{AggregatorOptions.SectionName}:{nameof(AggregatorOptions.DataDirectory)}"] = Path.GetFullPath(serverDataDirectory);
        builder.Configuration.AddInMemoryCollection(overrides);
        builder.Logging.AddFilter("Quartz", LogLevel.Warning);
        builder.Services.AddSurvey6Aggregator(builder.Configuration);
        builder.Services.AddSurvey6AggregatorScheduling(builder.Configuration);
    }
}

using System.Security.Cryptography;
using DuckDB.NET.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Tests.Support;

/// <summary>A C&amp;C data folder in a temp directory, with stored captures and their manifests, and the aggregator over it.</summary>
public sealed class Workspace : IDisposable
{
    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection, IConfiguration>? _configure;

    public Workspace(Dictionary<string, string?>? settings = null, Action<IServiceCollection, IConfiguration>? configure = null)
    {
        _configure = configure;
        Root = Path.Combine(Path.GetTempPath(), "survey6-agg-" + Guid.NewGuid().ToString("N")[..12]);
        DataDirectory = Path.Combine(Root, "data");
        Directory.CreateDirectory(Path.Combine(DataDirectory, "captures"));
        Time = new ManualTime(new DateTimeOffset(2024, 6, 1, 0, 0, 0, TimeSpan.Zero));
        _settings = new Dictionary<string, string?>
        {
            ["Aggregator:DataDirectory"] = DataDirectory,
            ["Aggregator:RowGroupSize"] = "1024",
            ["Aggregator:LockWait"] = "00:00:05",
            ["Aggregator:DuckDbThreads"] = "2",
            ["Aggregator:DuckDbMemoryLimit"] = "1GB",
        };
        foreach (var (k, v) in settings ?? [])
            _settings[k] = v;
        Services = Build();
    }

    public string Root { get; }

    public string DataDirectory { get; }

    public string LakeDirectory => Path.Combine(DataDirectory, "lake");

    public LakeLayout Lake => new(LakeDirectory);

    public ManualTime Time { get; }

    public ServiceProvider Services { get; private set; }

    public AggregatorRunner Runner => Services.GetRequiredService<AggregatorRunner>();

    public RunLedger Ledger => Services.GetRequiredService<RunLedger>();

    public AggregatorOptions Options => Services.GetRequiredService<IOptions<AggregatorOptions>>().Value;

    /// <summary>Stores <paramref name="content"/> as the C&amp;C would: named by its SHA-256, manifest beside it.</summary>
    public string Store(byte[] content, string probe = "probe-a", string date = "2024-05-01", string? manifestJson = null)
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(content));
        var folder = Path.Combine(DataDirectory, "captures", probe, date);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, sha + ".pcapng"), content);
        File.WriteAllText(Path.Combine(folder, sha + ".manifest.json"), manifestJson ?? Manifest(sha, probe, date));
        return sha;
    }

    public string CapturePath(string sha, string probe = "probe-a", string date = "2024-05-01") =>
        Path.Combine(DataDirectory, "captures", probe, date, sha + ".pcapng");

    /// <summary>A server manifest with the probe's manifest nested, as the C&amp;C writes them.</summary>
    public static string Manifest(string sha, string probe, string date, string? probeManifest = null) => $$"""
        {
          "sha256": "{{sha}}",
          "probe_id": "{{probe}}",
          "size": 0,
          "format": "pcapng",
          "window_start": "{{date}}T10:00:00+00:00",
          "window_end": "{{date}}T11:00:00+00:00",
          "received_at": "{{date}}T11:05:00+00:00",
          "probe_manifest": {{probeManifest ?? """{"labels": {"site": "lab", "rack": "r1"}, "location": {"lat": 48.1, "lon": 11.5, "country": "DE", "city": "Munich"}, "drops": {"if_dropped": 5, "os_dropped": 1}, "interface": "eth0", "filter": "ip6 or proto 41"}"""}}
        }
        """;

    public async Task<StageReport> RunAsync(AggregatorStage stage)
    {
        var report = await Runner.RunAsync(stage, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.NotNull(report);
        Assert.True(report.Succeeded, report.Error);
        return report;
    }

    /// <summary>Changes a setting and rebuilds the services, as a restart with a new configuration would.</summary>
    public void Reconfigure(string key, string? value)
    {
        _settings[key] = value;
        Restart();
    }

    /// <summary>Rebuilds the services, as a new process would (same folders, same settings).</summary>
    public void Restart()
    {
        Services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Services = Build();
    }

    public DuckDBConnection DuckDb()
    {
        var c = new DuckDBConnection("DataSource=:memory:");
        c.Open();
        return c;
    }

    public static List<object?[]> Rows(DuckDBConnection connection, string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        using var r = cmd.ExecuteReader();
        var rows = new List<object?[]>();
        while (r.Read())
        {
            var row = new object?[r.FieldCount];
            for (int i = 0; i < r.FieldCount; i++)
                row[i] = r.IsDBNull(i) ? null : r.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    public static T Scalar<T>(DuckDBConnection connection, string sql) => (T)Convert.ChangeType(Rows(connection, sql)[0][0]!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);

    public static string Q(string path) => "'" + path.Replace("'", "''", StringComparison.Ordinal) + "'";

    public void Dispose()
    {
        Services.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private ServiceProvider Build()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(_settings).Build();
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton<TimeProvider>(Time);
        services.AddSurvey6Aggregator(configuration);
        _configure?.Invoke(services, configuration);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

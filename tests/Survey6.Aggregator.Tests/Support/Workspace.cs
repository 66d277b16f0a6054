using System.Security.Cryptography;
using System.Text;
using DuckDB.NET.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Contracts.Manifests;

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

    /// <summary>
    /// The server's manifest as the C&amp;C writes it: labels and location from its record of the probe, the probe's
    /// manifest beside them with a window of 10:00 to 11:00 and 6 drops of every kind (kernel 1, interface 2, queue 2, disk 1).
    /// </summary>
    public static string Manifest(string sha, string probe, string date, string? probeManifest = null)
    {
        var day = DateOnly.ParseExact(date, "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        long At(int hour) => new DateTimeOffset(day.ToDateTime(new TimeOnly(hour, 0)), TimeSpan.Zero).ToUnixTimeMilliseconds() * 1_000_000;
        probeManifest ??= new CaptureManifest
        {
            ManifestVersion = CaptureManifest.CurrentVersion,
            File = "20240501T100000Z-000001.pcapng",
            Sha256 = sha,
            Size = 0,
            Sequence = 1,
            ProbeId = "what-the-file-claims",
            Labels = new Dictionary<string, string> { ["site"] = "the-probe-claims" },
            WindowStartNs = At(10),
            WindowEndNs = At(11),
            Frames = 0,
            Interface = "eth0",
            Filter = "ip6 or proto 41",
            Drops = new ManifestDrops { Kernel = 1, Interface = 2, Queue = 2, Disk = 1 },
            Interfaces = [new ManifestInterface { Id = 0, Name = "eth0", Frames = 0, KernelDropped = 1, InterfaceDropped = 2, QueueDropped = 2, DiskDropped = 1 }],
            CloseReason = "size",
        }.ToJson();
        return Encoding.UTF8.GetString(StoredCaptureManifest.Create(sha, probe, 0, "pcapng", At(10), At(11), At(11) + 300_000_000_000,
            new Dictionary<string, string> { ["site"] = "lab", ["rack"] = "r1" }, new ProbeLocation(48.1, 11.5, "DE", "Munich"), probeManifest).ToUtf8Json());
    }

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

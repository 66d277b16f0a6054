using Microsoft.Extensions.Options;
using Quartz;
using Survey6.Aggregator.Connections;
using Survey6.Data;

namespace Survey6.Aggregator;

/// <summary>Settings of the aggregator (configuration section <c>Aggregator</c>).</summary>
public sealed class AggregatorOptions
{
    public const string SectionName = "Aggregator";

    /// <summary>The C&amp;C data folder: stored captures under <c>captures/</c>, the ledger beside them.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>Root of the Parquet datasets; defaults to <c>DATA/lake</c> (<see cref="DataLayout.LakeDirectorySetting"/>).</summary>
    public string? LakeDirectory { get; set; }

    /// <summary>SQLite run ledger; defaults to <c>DATA/aggregator.db</c> (<see cref="DataLayout.LedgerPathSetting"/>).</summary>
    public string? LedgerPath { get; set; }

    /// <summary>
    /// Where the ledger lives (section <c>Aggregator:Ledger</c>): unset, the embedded SQLite file above; with a
    /// PostgreSQL connection string, in PostgreSQL, for workers on several hosts.
    /// </summary>
    public LedgerOptions Ledger { get; set; } = new();

    /// <summary>SQLite job store of the scheduler; defaults to <c>DATA/aggregator-scheduler.db</c>.</summary>
    public string? SchedulerStorePath { get; set; }

    /// <summary>
    /// Where the parse stage takes captures from: <c>Queue</c> (the ingest queue, section <c>Ingest</c>) or
    /// <c>Directory</c> (a scan of <c>DATA/captures</c>). <c>survey6 server run</c> and <c>survey6 aggregate run</c>
    /// set the queue; <c>aggregate once</c> picks one (see its <c>--source</c>). The library default is the scan.
    /// </summary>
    public CaptureSourceKind Source { get; set; } = CaptureSourceKind.Directory;

    /// <summary>
    /// This worker's name (default: the host name): part of its consumer name on the queue and of its scheduler store,
    /// <c>DATA/aggregator-scheduler-NAME.db</c>. Workers sharing a data folder on one host need distinct names.
    /// </summary>
    public string? WorkerName { get; set; }

    /// <summary>
    /// Rows per Parquet row group of a packets file. The parse holds a row group's columns in memory (about 460 bytes
    /// a row), so unset it follows <see cref="MemoryLimit"/>: one row per 8 KiB of it, at most 1,048,576 (131,072 for
    /// the default 1 GiB). A fixed 1,048,576 took a 2 M-packet capture's parse to a peak RSS of 1,261 MiB, past the
    /// default limit (docs/performance.md).
    /// </summary>
    public int? RowGroupSize { get; set; }

    /// <summary>Rows per row group: <see cref="RowGroupSize"/>, or one per 8 KiB of <see cref="MemoryLimit"/>.</summary>
    public int ResolvedRowGroupSize =>
        RowGroupSize ?? (int)Math.Clamp(MemoryLimitBytes / (8 << 10), MinRowGroupSize, 1 << 20);

    /// <summary>The smallest row group a packets file may have.</summary>
    public const int MinRowGroupSize = 1024;

    /// <summary>Captures one parse run takes at most, so that a backlog does not hold the stage lock for hours.</summary>
    public int ParseBatchSize { get; set; } = 500;

    /// <summary>Parse attempts before a capture that keeps failing is quarantined.</summary>
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Wait before the first retry of a failed capture; doubled after every further failure.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest wait between retries.</summary>
    public TimeSpan MaxRetryBackoff { get; set; } = TimeSpan.FromHours(6);

    /// <summary>
    /// How long after a UTC day ends its partition counts as closed and is aggregated. Uploads arrive late (probes
    /// wait for idle links), so a day is not final at midnight.
    /// </summary>
    public TimeSpan PartitionGrace { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Aggregate open partitions too (the current day, or one still inside its grace period).</summary>
    public bool IncludeOpenPartitions { get; set; }

    /// <summary>DuckDB worker threads for the aggregate stage.</summary>
    public int DuckDbThreads { get; set; } = 2;

    /// <summary>
    /// What the aggregate stage may hold, e.g. <c>1GiB</c> (docs/performance.md says where its memory goes): DuckDB gets
    /// <see cref="DuckDbMemoryLimit"/>, by default half of it, and spills to <c>LAKE/.staging</c> beyond that.
    /// </summary>
    public string MemoryLimit { get; set; } = "1GiB";

    /// <summary>DuckDB's own memory limit, e.g. <c>512MiB</c>; unset: half of <see cref="MemoryLimit"/>, which it may not exceed.</summary>
    public string? DuckDbMemoryLimit { get; set; }

    /// <summary>
    /// Names (transport, name, type and code) per file of the <c>dns</c> dataset, whose sort must fit DuckDB's memory
    /// with its AAAA and probe lists: a date with more is written as several files by a hash of the name, each sorted.
    /// Unset: one name per KiB of <see cref="DuckDbMemoryBytes"/> (524,288 for the default 512MiB; one file of 1.9 M
    /// names ran out of it, docs/performance.md).
    /// </summary>
    public long? DnsNamesPerFile { get; set; }

    /// <summary>Names per <c>dns</c> file: <see cref="DnsNamesPerFile"/>, or one per KiB of DuckDB's memory.</summary>
    public long ResolvedDnsNamesPerFile => DnsNamesPerFile ?? Math.Max(1, DuckDbMemoryBytes >> 10);

    /// <summary>
    /// How much of the partials (their files' bytes, compressed), e.g. <c>16MiB</c>, one step of a merged state's merge
    /// (<c>dns</c>, <c>icmpv6</c>) adds to the state: each step extends the state the step before wrote, so that a step's
    /// aggregate holds its own partials' keys and never the whole day's. Unset: a thirty-second of
    /// <see cref="DuckDbMemoryBytes"/> (16 MiB of the default 512 MiB; a batch of ten 500,000-packet captures, about
    /// 10 MB of <c>dns</c> partials, is one step). Merging all the partials of a day of 50 M packets of new traffic at once
    /// ran out of DuckDB's 512 MiB (docs/performance.md).
    /// </summary>
    public string? StateStepSize { get; set; }

    /// <summary>Bytes of partials per step of a merged state: <see cref="StateStepSize"/>, or a thirty-second of DuckDB's memory.</summary>
    public long ResolvedStateStepBytes =>
        StateStepSize is { } own && Aggregate.MemorySize.TryParse(own, out long bytes) ? bytes : Math.Max(1, DuckDbMemoryBytes / 32);

    /// <summary>DuckDB's memory limit in bytes, from <see cref="DuckDbMemoryLimit"/> or <see cref="MemoryLimit"/> (validated at start).</summary>
    public long DuckDbMemoryBytes =>
        DuckDbMemoryLimit is { } own && Aggregate.MemorySize.TryParse(own, out long bytes) ? bytes
        : MemoryLimitBytes / 2;

    /// <summary><see cref="MemoryLimit"/> in bytes (validated at start; 1 GiB if it does not parse).</summary>
    public long MemoryLimitBytes => Aggregate.MemorySize.TryParse(MemoryLimit, out long bytes) ? bytes : 1L << 30;

    /// <summary>How long a scheduled stage waits for another stage to finish before it skips this turn.</summary>
    public TimeSpan LockWait { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Wait before a scheduled stage whose start failed (its ledger or queue could not be opened) tries again; doubled
    /// after every further failure. A stage is never left dead while the process runs.
    /// </summary>
    public TimeSpan StartRetryBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between tries to start a stage.</summary>
    public TimeSpan MaxStartRetryBackoff { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Cron expressions (Quartz syntax, with seconds) per stage.</summary>
    public AggregatorSchedules Schedules { get; set; } = new();

    /// <summary>
    /// How long a raw capture (and its manifest) is kept after it was parsed; null keeps captures for ever. A capture
    /// is removed only when the ledger says parsed and its packets file exists.
    /// </summary>
    public TimeSpan? CaptureRetention { get; set; }

    /// <summary>Age after which the cleanup stage removes hidden temp files and staging folders in the lake.</summary>
    public TimeSpan TempFileMaxAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Idle timeouts and TCP close delays of the <c>connections</c> dataset (section <c>Aggregator:Connections</c>),
    /// Zeek's defaults.
    /// </summary>
    public ConnectionOptions Connections { get; set; } = new();

    /// <summary>Prefix-preserving anonymisation of the addresses in every output (off by default).</summary>
    public AnonymisationOptions Anonymisation { get; set; } = new();

    /// <summary>Where everything is: the data directory's layout, with the lake and the ledger where these options put them.</summary>
    public DataLayout Layout => new(DataDirectory, LakeDirectory, LedgerPath);

    public string ResolvedSchedulerStorePath => SchedulerStorePath is { } configured ? Path.GetFullPath(configured) : Layout.SchedulerStore(WorkerName);
}

/// <summary>The run ledger's store (docs/operations.md, "Several aggregator workers").</summary>
public sealed class LedgerOptions
{
    /// <summary>
    /// An Npgsql connection string (<c>Host=db.lan;Database=survey6;Username=survey6;Password=...</c>): the ledger, and
    /// the lock that serialises stages, live in that PostgreSQL database. Unset (the default): the ledger is the
    /// SQLite file <see cref="AggregatorOptions.LedgerPath"/> and the lock an flock on <c>DATA/aggregator.lock</c>.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>True when the ledger is in PostgreSQL.</summary>
    public bool IsPostgres => ConnectionString is not null;
}

/// <summary>Where the parse stage takes captures from.</summary>
public enum CaptureSourceKind
{
    /// <summary>The ingest queue the C&amp;C fills.</summary>
    Queue,

    /// <summary>A scan of <c>DATA/captures</c> for captures the ledger has not seen.</summary>
    Directory,
}

/// <summary>Crypto-PAn anonymisation of addresses (docs/datasets.md, "Anonymisation").</summary>
public sealed class AnonymisationOptions
{
    public bool Enabled { get; set; }

    /// <summary>File holding the 32-byte key; defaults to <c>DATA/anonymisation.key</c>, created (0600) on first use.</summary>
    public string? KeyPath { get; set; }
}

/// <summary>When each stage runs under <c>survey6 aggregate run</c>.</summary>
public sealed class AggregatorSchedules
{
    /// <summary>Every minute: new captures become queryable soon after they are stored.</summary>
    public string Parse { get; set; } = "0 * * * * ?";

    /// <summary>Every hour at minute 20: closed days are rebuilt when their packets changed.</summary>
    public string Aggregate { get; set; } = "0 20 * * * ?";

    /// <summary>Every ten minutes: temp files, retries, quarantine.</summary>
    public string Cleanup { get; set; } = "0 5/10 * * * ?";
}

/// <summary>Checks <see cref="AggregatorOptions"/> at start-up so a typo fails fast rather than at the first run.</summary>
public sealed class AggregatorOptionsValidator : IValidateOptions<AggregatorOptions>
{
    public ValidateOptionsResult Validate(string? name, AggregatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
            failures.Add("DataDirectory is required.");
        if (!Enum.IsDefined(options.Source))
            failures.Add($"Source must be Queue or Directory (is {options.Source}).");
        if (options.WorkerName is { } worker && !IsValidWorkerName(worker))
            failures.Add(WorkerNameError(worker));
        if (options.RowGroupSize is < AggregatorOptions.MinRowGroupSize or > 16 << 20)
            failures.Add($"RowGroupSize must be between {AggregatorOptions.MinRowGroupSize} and {16 << 20} (is {options.RowGroupSize}); leave it unset for one row per 8 KiB of MemoryLimit.");
        if (options.ParseBatchSize < 1)
            failures.Add($"ParseBatchSize must be at least 1 (is {options.ParseBatchSize}).");
        if (options.MaxAttempts < 1)
            failures.Add($"MaxAttempts must be at least 1 (is {options.MaxAttempts}).");
        if (options.RetryBackoff < TimeSpan.Zero || options.MaxRetryBackoff < options.RetryBackoff)
            failures.Add("RetryBackoff must not be negative nor exceed MaxRetryBackoff.");
        if (options.PartitionGrace < TimeSpan.Zero)
            failures.Add("PartitionGrace must not be negative.");
        if (options.StartRetryBackoff <= TimeSpan.Zero || options.MaxStartRetryBackoff < options.StartRetryBackoff)
            failures.Add("StartRetryBackoff must be positive and not exceed MaxStartRetryBackoff.");
        if (options.LockWait < TimeSpan.Zero)
            failures.Add("LockWait must not be negative.");
        if (options.CaptureRetention is { } retention && retention <= TimeSpan.Zero)
            failures.Add("CaptureRetention must be positive (leave it unset to keep captures).");
        if (options.TempFileMaxAge < TimeSpan.Zero)
            failures.Add("TempFileMaxAge must not be negative.");
        if (options.Anonymisation.KeyPath is { } keyPath && string.IsNullOrWhiteSpace(keyPath))
            failures.Add("Anonymisation:KeyPath must not be blank.");
        else if (options.Anonymisation is { Enabled: true, KeyPath: { } configured } && !File.Exists(configured))
            failures.Add($"Anonymisation:KeyPath '{configured}' does not exist (only the default key file is created on first use).");
        failures.AddRange(options.Connections.Problems());
        if (options.Ledger.IsPostgres)
        {
            try
            {
                _ = Ledger.PostgresRunLedger.Parse(options.Ledger.ConnectionString);
            }
            catch (ArgumentException e)
            {
                failures.Add(e.Message);
            }
            if (options.LedgerPath is not null)
                failures.Add("LedgerPath and Ledger:ConnectionString are both set: the ledger is either a SQLite file or in PostgreSQL; unset one.");
        }
        if (options.DuckDbThreads is < 1 or > 256)
            failures.Add($"DuckDbThreads must be between 1 and 256 (is {options.DuckDbThreads}).");
        if (!Aggregate.MemorySize.TryParse(options.MemoryLimit, out long memory) || memory < 256L << 20)
            failures.Add($"MemoryLimit must be a size of at least 256MiB such as 1GiB or 1500MB (is '{options.MemoryLimit}').");
        else if (options.DuckDbMemoryLimit is { } duck && (!Aggregate.MemorySize.TryParse(duck, out long duckBytes) || duckBytes > memory))
            failures.Add($"DuckDbMemoryLimit must be a size such as 512MiB, at most MemoryLimit ({options.MemoryLimit}) (is '{duck}'); leave it unset for half of MemoryLimit.");
        if (options.StateStepSize is { } step && !Aggregate.MemorySize.TryParse(step, out _))
            failures.Add($"StateStepSize must be a size such as 16MiB (is '{step}'); leave it unset for a thirty-second of DuckDB's memory.");
        if (options.DnsNamesPerFile is < 1)
            failures.Add($"DnsNamesPerFile must be at least 1 (is {options.DnsNamesPerFile}); leave it unset for one name per KiB of DuckDB's memory.");
        foreach (var (stage, cron) in new[] { ("Parse", options.Schedules.Parse), ("Aggregate", options.Schedules.Aggregate), ("Cleanup", options.Schedules.Cleanup) })
        {
            if (!IsValidCron(cron))
                failures.Add($"Schedules:{stage} '{cron}' is not a valid Quartz cron expression.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>1-64 of A-Z a-z 0-9 . _ -: the name becomes part of a file name and of a queue consumer name.</summary>
    public static bool IsValidWorkerName(string name) =>
        name.Length is > 0 and <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');

    public static string WorkerNameError(string name) => $"WorkerName '{name}' must be 1-64 of A-Z a-z 0-9 . _ - (it names a file).";

    private static bool IsValidCron(string? cron)
    {
        if (string.IsNullOrWhiteSpace(cron))
            return false;
        try
        {
            _ = new CronExpression(cron);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}

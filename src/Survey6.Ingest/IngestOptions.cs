using Microsoft.Extensions.Options;

namespace Survey6.Ingest;

/// <summary>Which queue implementation to use.</summary>
public enum IngestQueueKind
{
    /// <summary>Embedded, durable in one SQLite file; enough for one C&amp;C host.</summary>
    Sqlite,

    /// <summary>Redis Streams with a consumer group; for aggregator workers on several hosts.</summary>
    Redis,
}

/// <summary>The <c>Ingest</c> configuration section.</summary>
public sealed class IngestOptions
{
    public const string SectionName = "Ingest";

    public IngestQueueKind Kind { get; set; } = IngestQueueKind.Sqlite;

    /// <summary>How long a consumer owns an item before it may go to another consumer.</summary>
    public TimeSpan LeaseTime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Deliveries before an item is dead-lettered.</summary>
    public int MaxAttempts { get; set; } = 5;

    public SqliteIngestOptions Sqlite { get; set; } = new();

    public RedisIngestOptions Redis { get; set; } = new();
}

public sealed class SqliteIngestOptions
{
    /// <summary>The queue's database file; created with its directory when missing.</summary>
    public string Path { get; set; } = "";

    /// <summary>How long a command waits for another writer's lock before failing.</summary>
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class RedisIngestOptions
{
    /// <summary>A StackExchange.Redis configuration string, e.g. <c>localhost:6379</c>.</summary>
    public string Configuration { get; set; } = "";

    /// <summary>The stream key; the dead-letter stream and the dedupe keys are named after it.</summary>
    public string Stream { get; set; } = "survey6:ingest";

    /// <summary>The consumer group all aggregator workers join.</summary>
    public string Group { get; set; } = "aggregator";
}

/// <summary>Checks <see cref="IngestOptions"/>; used by ValidateOnStart and by the queues' constructors.</summary>
public sealed class IngestOptionsValidator : IValidateOptions<IngestOptions>
{
    // Below this a lease is shorter than one round of work plus clock jitter between hosts.
    internal static readonly TimeSpan MinLeaseTime = TimeSpan.FromMilliseconds(100);
    internal static readonly TimeSpan MaxLeaseTime = TimeSpan.FromDays(1);
    internal const int MaxMaxAttempts = 1000;

    public ValidateOptionsResult Validate(string? name, IngestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        if (!Enum.IsDefined(options.Kind))
        {
            errors.Add($"Ingest:Kind must be sqlite or redis, got {options.Kind}.");
        }
        if (options.LeaseTime < MinLeaseTime || options.LeaseTime > MaxLeaseTime)
        {
            errors.Add($"Ingest:LeaseTime must be between {MinLeaseTime} and {MaxLeaseTime}, got {options.LeaseTime}.");
        }
        if (options.MaxAttempts is < 1 or > MaxMaxAttempts)
        {
            errors.Add($"Ingest:MaxAttempts must be between 1 and {MaxMaxAttempts}, got {options.MaxAttempts}.");
        }
        if (options.Kind == IngestQueueKind.Sqlite)
        {
            if (string.IsNullOrWhiteSpace(options.Sqlite?.Path))
            {
                errors.Add("Ingest:Sqlite:Path is required when Ingest:Kind is sqlite.");
            }
            if (options.Sqlite is { } s && (s.BusyTimeout < TimeSpan.FromSeconds(1) || s.BusyTimeout > TimeSpan.FromMinutes(10)))
            {
                errors.Add($"Ingest:Sqlite:BusyTimeout must be between 1 s and 10 min, got {s.BusyTimeout}.");
            }
        }
        if (options.Kind == IngestQueueKind.Redis)
        {
            if (string.IsNullOrWhiteSpace(options.Redis?.Configuration))
            {
                errors.Add("Ingest:Redis:Configuration is required when Ingest:Kind is redis.");
            }
            if (string.IsNullOrWhiteSpace(options.Redis?.Stream))
            {
                errors.Add("Ingest:Redis:Stream is required when Ingest:Kind is redis.");
            }
            if (string.IsNullOrWhiteSpace(options.Redis?.Group))
            {
                errors.Add("Ingest:Redis:Group is required when Ingest:Kind is redis.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    internal static void ThrowIfInvalid(IngestOptions options)
    {
        var result = new IngestOptionsValidator().Validate(Options.DefaultName, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(IngestOptions), result.Failures);
        }
    }
}

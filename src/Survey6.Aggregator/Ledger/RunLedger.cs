using System.Data.Common;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Sources;
using Survey6.Data;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Ledger;

/// <summary>State of one capture in the ledger.</summary>
public sealed record CaptureState(
    string Sha256, string ProbeId, DateOnly Date, string CapturePath, string? ManifestPath, string Status, int Attempts,
    string? Reason, long? Frames, string? OutputPath, DateTimeOffset UpdatedAt, DateTimeOffset? NextAttemptAt)
{
    public PendingCapture ToPending() => new(Sha256, ProbeId, Date, CapturePath, ManifestPath);
}

/// <summary>One stage run as recorded.</summary>
public sealed record RunRecord(
    string RunId, string Stage, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, long? DurationMs, string Status,
    long Inputs, long Outputs, long Rows, string? Error);

/// <summary>Per stage: its newest run and how many of its runs ended in each status.</summary>
public sealed record StageRuns(string Stage, RunRecord Last, IReadOnlyDictionary<string, long> RunsByStatus);

/// <summary>What the aggregate stage last built for a date.</summary>
public sealed record PartitionState(DateOnly Date, string Fingerprint, int Inputs, string RowsJson, DateTimeOffset BuiltAt, string RunId)
{
    /// <summary>
    /// <see cref="RowsJson"/> read back: rows per table, as the aggregate stage wrote them. A count that cannot be
    /// read is left out (the ledger itself stays the record).
    /// </summary>
    public IReadOnlyDictionary<string, long> Rows()
    {
        var rows = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            using var document = JsonDocument.Parse(RowsJson);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return rows;
            foreach (var table in document.RootElement.EnumerateObject())
            {
                if (table.Value.ValueKind == JsonValueKind.Number && table.Value.TryGetInt64(out var n))
                    rows[table.Name] = n;
            }
        }
        catch (JsonException)
        {
            // Left out, as above.
        }

        return rows;
    }
}

/// <summary>
/// The embedded ledger: SQLite, <c>DATA/aggregator.db</c> (WAL, 0600), migrated by the shared
/// <see cref="SqliteMigrator"/>. The default; for workers on several hosts see <see cref="PostgresRunLedger"/>.
/// </summary>
public sealed class RunLedger : SqlRunLedger
{
    private readonly string _connectionString;

    public RunLedger(IOptions<AggregatorOptions> options, TimeProvider time)
        : this(options.Value.Layout.Ledger, time)
    {
    }

    public RunLedger(string path, TimeProvider time)
        : base(time)
    {
        Path = System.IO.Path.GetFullPath(path);
        // Its folder is usually the data directory: if missing, it is made owner-only, as the C&C would.
        SecureFiles.CreateOwnerOnlyDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path, Pooling = true, DefaultTimeout = 30 }.ToString();
        SqliteMigrator.Migrate(Path, _connectionString, LedgerMigrations.Steps, LedgerMigrations.AdoptUserVersion, time);
    }

    private RunLedger(string path, string connectionString, TimeProvider time)
        : base(time)
    {
        Path = path;
        _connectionString = connectionString;
    }

    /// <summary>
    /// The ledger at <paramref name="path"/> for reading only, as a process that does not run the aggregator reads it
    /// (the C&amp;C's data page): nothing is created or migrated. Null while there is no ledger there yet, or its
    /// first schema step is not in place.
    /// </summary>
    public static RunLedger? OpenReadOnly(string path, TimeProvider time)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            return null;
        // Not pooled: a reader that looks now and then keeps no handle on the aggregator's file.
        var connectionString = new SqliteConnectionStringBuilder { DataSource = full, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = 30 }.ToString();
        var ledger = new RunLedger(full, connectionString, time);
        using var c = (SqliteConnection)ledger.Open();
        // A ledger from before the shared migration scheme has its tables but no schema_version until the aggregator
        // next starts; its tables are what is read.
        return SqliteMigrator.HasTable(c, null, "runs") ? ledger : null;
    }

    public string Path { get; }

    public override string Location => Path;

    public override int SchemaVersion
    {
        get
        {
            using var c = (SqliteConnection)Open();
            return SqliteMigrator.CurrentVersion(c);
        }
    }

    protected override DbConnection Open()
    {
        var c = new SqliteConnection(_connectionString);
        c.Open();
        Execute(c, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000");
        return c;
    }
}

using Microsoft.Data.Sqlite;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Sources;

namespace Survey6.Aggregator.Tests;

/// <summary>The ledger under the shared migration scheme, including ledgers made by releases that counted steps in PRAGMA user_version.</summary>
public sealed class LedgerMigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("survey6-ledger-").FullName;

    private string LedgerPath => Path.Combine(_dir, "aggregator.db");

    [Fact]
    public void A_ledger_made_the_old_way_is_adopted_with_its_rows_and_gets_no_step_twice()
    {
        // What the earlier RunLedger.Migrate left: step 1 and user_version = 1 in one transaction, then a parsed capture.
        using (var connection = new SqliteConnection($"Data Source={LedgerPath};Pooling=false"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode = WAL; BEGIN; " + LedgerMigrations.Steps[0].Sql + "PRAGMA user_version = 1; COMMIT;" + """
                INSERT INTO captures (sha256, probe_id, capture_date, capture_path, status, attempts, first_attempt_at, updated_at)
                VALUES ('aa', 'probe-a', '2024-05-01', '/x.pcapng', 'parsed', 1, '2024-05-01T00:00:00.0000000Z', '2024-05-01T00:00:00.0000000Z');
                """;
            command.ExecuteNonQuery();
        }

        var ledger = new RunLedger(LedgerPath, TimeProvider.System);

        Assert.Equal(LedgerMigrations.Steps.Count, ledger.SchemaVersion);
        Assert.Equal(1, ledger.CaptureCounts()[RunLedger.Parsed]);
        Assert.Equal("probe-a", ledger.GetCapture("aa")!.ProbeId);
        using var check = new SqliteConnection($"Data Source={LedgerPath};Mode=ReadOnly;Pooling=false");
        check.Open();
        using var rows = check.CreateCommand();
        rows.CommandText = "SELECT COUNT(*) FROM schema_version";
        Assert.Equal((long)LedgerMigrations.Steps.Count, (long)rows.ExecuteScalar()!);

        // And it keeps working as a ledger.
        var run = ledger.StartRun("parse");
        ledger.RecordCapture(new PendingCapture("bb", "probe-a", new DateOnly(2024, 5, 1), "/y.pcapng", null), RunLedger.Parsed, 1, null, 10, null, null, run);
        Assert.Equal(2, ledger.CaptureCounts()[RunLedger.Parsed]);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void A_new_ledger_is_owner_only_with_every_step_recorded()
    {
        var ledger = new RunLedger(LedgerPath, TimeProvider.System);
        Assert.Equal(LedgerMigrations.Steps.Count, ledger.SchemaVersion);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(LedgerPath));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }
}

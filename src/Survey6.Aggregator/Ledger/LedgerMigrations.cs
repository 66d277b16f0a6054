using Microsoft.Data.Sqlite;
using Survey6.Data;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// Schema of the run ledger, the one description both stores are made from: applied to SQLite by the shared
/// <see cref="SqliteMigrator"/>, and to PostgreSQL by <see cref="PostgresMigrator"/> as <see cref="PostgresSteps"/>
/// (the same steps, numbers and names). Steps are append-only: a released one is never edited, a change is a new
/// step. Write them in the SQL both read: TEXT, INTEGER (64-bit in SQLite, made BIGINT for PostgreSQL), CHECK,
/// REFERENCES, CREATE INDEX.
/// </summary>
internal static partial class LedgerMigrations
{
    public static readonly IReadOnlyList<SqliteMigration> Steps =
    [
        new(1, "runs, their files, per-capture state, per-date aggregate state", """
        CREATE TABLE runs (
            run_id       TEXT PRIMARY KEY,
            stage        TEXT NOT NULL,
            started_at   TEXT NOT NULL,
            finished_at  TEXT,
            duration_ms  INTEGER,
            status       TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
            inputs       INTEGER NOT NULL DEFAULT 0,
            outputs      INTEGER NOT NULL DEFAULT 0,
            rows         INTEGER NOT NULL DEFAULT 0,
            error        TEXT,
            host         TEXT,
            pid          INTEGER
        );
        CREATE INDEX runs_stage_started ON runs (stage, started_at);

        CREATE TABLE run_files (
            run_id     TEXT NOT NULL REFERENCES runs (run_id),
            direction  TEXT NOT NULL CHECK (direction IN ('input', 'output')),
            path       TEXT NOT NULL,
            rows       INTEGER,
            PRIMARY KEY (run_id, direction, path)
        );

        CREATE TABLE captures (
            sha256            TEXT PRIMARY KEY,
            probe_id          TEXT NOT NULL,
            capture_date      TEXT NOT NULL,
            capture_path      TEXT NOT NULL,
            manifest_path     TEXT,
            status            TEXT NOT NULL CHECK (status IN ('parsed', 'failed', 'quarantined')),
            attempts          INTEGER NOT NULL,
            reason            TEXT,
            frames            INTEGER,
            output_path       TEXT,
            first_attempt_at  TEXT NOT NULL,
            updated_at        TEXT NOT NULL,
            next_attempt_at   TEXT,
            last_run_id       TEXT
        );
        CREATE INDEX captures_retry ON captures (status, next_attempt_at);

        CREATE TABLE partitions (
            date         TEXT PRIMARY KEY,
            fingerprint  TEXT NOT NULL,
            inputs       INTEGER NOT NULL,
            rows_json    TEXT NOT NULL,
            built_at     TEXT NOT NULL,
            run_id       TEXT NOT NULL
        );
        """),
    ];

    /// <summary>
    /// <see cref="Steps"/> for PostgreSQL: SQLite's INTEGER holds 64 bits, PostgreSQL's 32, so every INTEGER column
    /// becomes BIGINT; the rest is the same text.
    /// </summary>
    public static readonly IReadOnlyList<SqliteMigration> PostgresSteps =
        [.. Steps.Select(s => s with { Sql = IntegerWord().Replace(s.Sql, "BIGINT") })];

    [System.Text.RegularExpressions.GeneratedRegex(@"\bINTEGER\b", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex IntegerWord();

    /// <summary>
    /// Ledgers made before the shared scheme counted their steps in <c>PRAGMA user_version</c> (each step and the
    /// count in one transaction), so that count is the version they have.
    /// </summary>
    public static int AdoptUserVersion(SqliteConnection connection, SqliteTransaction transaction)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "PRAGMA user_version";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

using Microsoft.Data.Sqlite;
using Survey6.Data;

namespace Survey6.Ingest;

/// <summary>
/// Schema of the embedded ingest queue (ingest.db), applied by the shared <see cref="SqliteMigrator"/>. Steps are
/// append-only: a released one is never edited, a change is a new step.
/// </summary>
internal static class IngestMigrations
{
    public static readonly IReadOnlyList<SqliteMigration> Steps =
    [
        new(1, "queue and dead letters", """
            CREATE TABLE ingest_queue (
                seq           INTEGER PRIMARY KEY AUTOINCREMENT,
                sha256        TEXT    NOT NULL UNIQUE,
                probe_id      TEXT    NOT NULL,
                stored_path   TEXT    NOT NULL,
                size_bytes    INTEGER NOT NULL,
                received_at   TEXT    NOT NULL,
                manifest_path TEXT,
                enqueued_at   INTEGER NOT NULL,
                -- pending: when it may be claimed (now, or after a retry delay);
                -- leased: when the lease expires. Either way claimable once visible_at <= now.
                visible_at    INTEGER NOT NULL,
                attempts      INTEGER NOT NULL DEFAULT 0,
                delivery_id   TEXT,
                consumer      TEXT,
                last_error    TEXT
            ) STRICT;
            CREATE INDEX ingest_queue_visible ON ingest_queue (visible_at, seq);
            CREATE TABLE ingest_dead (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                sha256        TEXT    NOT NULL,
                probe_id      TEXT    NOT NULL,
                stored_path   TEXT    NOT NULL,
                size_bytes    INTEGER NOT NULL,
                received_at   TEXT    NOT NULL,
                manifest_path TEXT,
                enqueued_at   INTEGER NOT NULL,
                attempts      INTEGER NOT NULL,
                reason        TEXT    NOT NULL,
                dead_at       INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX ingest_dead_sha ON ingest_dead (sha256);
            """),
    ];

    /// <summary>
    /// Queues made before the shared scheme created this same schema with <c>CREATE TABLE IF NOT EXISTS</c> and kept no
    /// version: one that has the queue table is at version 1.
    /// </summary>
    public static int AdoptUnversioned(SqliteConnection connection, SqliteTransaction transaction) =>
        SqliteMigrator.HasTable(connection, transaction, "ingest_queue") ? 1 : 0;
}

using System.Globalization;
using System.Reflection;
using Microsoft.Data.Sqlite;
using Survey6.Packets.Files;

namespace Survey6.Data;

/// <summary>One schema step of a SQLite file: applied once, in version order, never edited after release.</summary>
/// <param name="Version">1, 2, 3, ...: the version the file has once the step is applied.</param>
/// <param name="Name">What the step does, recorded with it.</param>
/// <param name="Sql">The statements.</param>
public sealed record SqliteMigration(int Version, string Name, string Sql);

/// <summary>
/// The one migration scheme of every SQLite file survey6 keeps (state.db, ingest.db, aggregator.db): the applied
/// steps are rows of <c>schema_version (version, name, applied_at)</c>, and each step runs in its own
/// <c>BEGIN IMMEDIATE</c> transaction that first reads the version, then applies the step and records it. Processes
/// that open a fresh file together therefore queue on SQLite's write lock and each sees what the one before it did:
/// a step is applied once, fully or not at all, and a re-run applies nothing.
/// </summary>
public static class SqliteMigrator
{
    /// <summary>The table that records the applied steps; other engines' migrators (the ledger on PostgreSQL) create the same one.</summary>
    public const string SchemaVersionTable = """
        CREATE TABLE IF NOT EXISTS schema_version (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )
        """;

    /// <summary>
    /// Creates <paramref name="path"/> owner-only (0600) when it is missing, switches it to WAL and applies the
    /// pending <paramref name="steps"/>; returns how many this call applied.
    /// </summary>
    /// <param name="path">The database file; its folder must exist.</param>
    /// <param name="connectionString">How to open it (pooling, timeouts): the owner's own settings.</param>
    /// <param name="steps">Every step, in version order from 1 without gaps (see <see cref="Validate"/>).</param>
    /// <param name="adoptVersion">
    /// For a file an earlier release made under another scheme: given the connection and the open transaction of a
    /// file without a <c>schema_version</c> row, the version its contents already have (0 for a new file). The steps
    /// up to that version are then recorded as applied, without being run.
    /// </param>
    /// <param name="time">The clock for <c>applied_at</c>.</param>
    public static int Migrate(string path, string connectionString, IReadOnlyList<SqliteMigration> steps,
        Func<SqliteConnection, SqliteTransaction, int>? adoptVersion = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        SecureFiles.CreateOwnerOnlyFile(path);
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        return Migrate(connection, steps, adoptVersion, time);
    }

    /// <inheritdoc cref="Migrate(string, string, IReadOnlyList{SqliteMigration}, Func{SqliteConnection, SqliteTransaction, int}?, TimeProvider?)"/>
    public static int Migrate(SqliteConnection connection, IReadOnlyList<SqliteMigration> steps,
        Func<SqliteConnection, SqliteTransaction, int>? adoptVersion = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Validate(steps);
        time ??= TimeProvider.System;
        // SQLite waits this long for another process's write lock instead of failing at once.
        Execute(connection, null, $"PRAGMA busy_timeout = {Math.Max(connection.DefaultTimeout, 1) * 1000}");
        // WAL lets readers look while a writer works; the file remembers it, so setting it again costs nothing.
        Execute(connection, null, "PRAGMA journal_mode = WAL");

        int applied = 0;
        foreach (var step in steps)
        {
            // BeginTransaction() is BEGIN IMMEDIATE: the version is read under the write lock, so two processes
            // never both find a step missing.
            using var transaction = connection.BeginTransaction();
            var current = CurrentVersion(connection, transaction, steps, adoptVersion, time);
            if (current < step.Version)
            {
                Execute(connection, transaction, step.Sql);
                Record(connection, transaction, step, time);
                applied++;
            }
            // Also when there was nothing to apply: the table, or an adopted file's record, is kept.
            transaction.Commit();
        }

        return applied;
    }

    /// <summary>The highest recorded version; 0 for a file without steps.</summary>
    public static int CurrentVersion(SqliteConnection connection, SqliteTransaction? transaction = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (!HasTable(connection, transaction, "schema_version"))
            return 0;
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>True when <paramref name="connection"/>'s database has a table called <paramref name="name"/>.</summary>
    public static bool HasTable(SqliteConnection connection, SqliteTransaction? transaction, string name)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $name";
        command.Parameters.AddWithValue("$name", name);
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>
    /// Steps shipped as embedded resources named <c>PREFIX NNNN_name.sql</c>, the number being the version, in order.
    /// </summary>
    public static IReadOnlyList<SqliteMigration> FromResources(Assembly assembly, string resourcePrefix)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var steps = new List<SqliteMigration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(resourcePrefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal)))
        {
            var name = resource[resourcePrefix.Length..^".sql".Length];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name[..underscore], NumberStyles.None, CultureInfo.InvariantCulture, out var version))
                throw new InvalidOperationException($"migration {resource} is not named NNNN_name.sql");
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            steps.Add(new SqliteMigration(version, name, reader.ReadToEnd()));
        }

        steps.Sort((a, b) => a.Version.CompareTo(b.Version));
        Validate(steps);
        return steps;
    }

    /// <summary>Steps must be numbered 1, 2, 3, ... in order: a gap or a repeat is a packaging mistake, caught before any step runs.</summary>
    public static void Validate(IReadOnlyList<SqliteMigration> steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        for (int i = 0; i < steps.Count; i++)
        {
            if (steps[i].Version != i + 1)
                throw new InvalidOperationException($"migration steps must be numbered 1, 2, 3, ...; step {i + 1} is '{steps[i].Name}' with version {steps[i].Version}");
        }
    }

    private static int CurrentVersion(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<SqliteMigration> steps,
        Func<SqliteConnection, SqliteTransaction, int>? adoptVersion, TimeProvider time)
    {
        Execute(connection, transaction, SchemaVersionTable);
        var current = CurrentVersion(connection, transaction);
        if (current > 0 || adoptVersion is null)
            return current;
        // A file from before this scheme: record what it already has, in this same transaction.
        var adopted = adoptVersion(connection, transaction);
        if (adopted > steps.Count)
            throw new InvalidOperationException($"the database is at version {adopted}, newer than this program's {steps.Count}");
        for (int v = 1; v <= adopted; v++)
            Record(connection, transaction, steps[v - 1], time);
        return adopted;
    }

    private static void Record(SqliteConnection connection, SqliteTransaction transaction, SqliteMigration step, TimeProvider time)
    {
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO schema_version (version, name, applied_at) VALUES ($v, $n, $t)";
        insert.Parameters.AddWithValue("$v", step.Version);
        insert.Parameters.AddWithValue("$n", step.Name);
        // Fixed-width UTC text, as state.db has always recorded it.
        insert.Parameters.AddWithValue("$t", time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        insert.ExecuteNonQuery();
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

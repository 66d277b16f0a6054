using System.Globalization;
using Npgsql;
using Survey6.Data;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// The migration scheme of <see cref="SqliteMigrator"/> on PostgreSQL: the applied steps are rows of
/// <c>schema_version (version, name, applied_at)</c>, and each step runs in its own transaction that first takes a
/// transaction-level advisory lock (<c>pg_advisory_xact_lock</c>), then reads the version, applies the step and
/// records it. Workers starting together on an empty database queue on the lock and each sees what the one before
/// it did: a step is applied once, fully or not at all (PostgreSQL's DDL is transactional), and a re-run applies
/// nothing. The lock goes with the transaction, so a worker that dies mid-step leaves neither lock nor half a step.
/// </summary>
internal static class PostgresMigrator
{
    /// <summary>Applies the pending <paramref name="steps"/>; returns how many this call applied.</summary>
    public static int Migrate(NpgsqlConnection connection, IReadOnlyList<SqliteMigration> steps, TimeProvider time)
    {
        SqliteMigrator.Validate(steps);
        int applied = 0;
        foreach (var step in steps)
        {
            using var transaction = connection.BeginTransaction();
            Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({PostgresLocks.Class}, {PostgresLocks.Migrations})");
            Execute(connection, transaction, SqliteMigrator.SchemaVersionTable);
            var current = CurrentVersion(connection, transaction);
            if (current > steps.Count)
                throw new InvalidOperationException($"the ledger database is at schema version {current}, newer than this program's {steps.Count}");
            if (current < step.Version)
            {
                Execute(connection, transaction, step.Sql);
                using var insert = new NpgsqlCommand("INSERT INTO schema_version (version, name, applied_at) VALUES (@v, @n, @t)", connection, transaction);
                insert.Parameters.AddWithValue("v", step.Version);
                insert.Parameters.AddWithValue("n", step.Name);
                insert.Parameters.AddWithValue("t", time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
                insert.ExecuteNonQuery();
                applied++;
            }
            transaction.Commit();
        }
        return applied;
    }

    /// <summary>The highest recorded version; 0 for a database without steps.</summary>
    public static int CurrentVersion(NpgsqlConnection connection, NpgsqlTransaction? transaction = null)
    {
        using var exists = new NpgsqlCommand("SELECT to_regclass('schema_version') IS NOT NULL", connection, transaction);
        if (exists.ExecuteScalar() is not true)
            return 0;
        using var command = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM schema_version", connection, transaction);
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void Execute(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, transaction);
        command.ExecuteNonQuery();
    }
}

/// <summary>
/// The advisory lock keys of the ledger's database, <c>(Class, object)</c> pairs: <see cref="Class"/> is survey6's
/// aggregator ("S6AG"), so other users of the same database do not collide with it.
/// </summary>
internal static class PostgresLocks
{
    public const int Class = 0x53364147;

    /// <summary>Held (transaction level) while a schema step is read and applied.</summary>
    public const int Migrations = 1;

    /// <summary>The stage lock: shared by queue-fed parse runs, exclusive for the other stages.</summary>
    public const int Stages = 2;

    /// <summary>Taken by a waiting exclusive holder, passed through by shared ones, so parse runs cannot starve it.</summary>
    public const int Gate = 3;
}

using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Survey6.Server.Storage;

/// <summary>
/// Applies the embedded <c>Storage/Migrations/NNNN_name.sql</c> steps in order, each in its own
/// transaction together with its row in <c>schema_version</c>, so a step is applied fully or not
/// at all and a re-run applies nothing.
/// </summary>
public static class Migrator
{
    private const string ResourcePrefix = "Survey6.Server.Migrations.";

    public sealed record Step(int Version, string Name, string Sql);

    /// <summary>Every step shipped with this build, in version order.</summary>
    public static IReadOnlyList<Step> Steps { get; } = LoadSteps();

    public static int LatestVersion => Steps.Count == 0 ? 0 : Steps[^1].Version;

    /// <summary>Applies pending steps; returns how many were applied.</summary>
    public static int Migrate(StateDatabase database, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        ArgumentNullException.ThrowIfNull(database);
        using var connection = database.Open();
        Execute(connection, null, "PRAGMA journal_mode=WAL;");
        Execute(connection, null, """
            CREATE TABLE IF NOT EXISTS schema_version (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL
            );
            """);

        int applied = 0;
        foreach (var step in Steps)
        {
            // BEGIN IMMEDIATE: two processes starting together serialise here, and the second sees the first's row.
            using var transaction = connection.BeginTransaction();
            if (CurrentVersion(connection, transaction) >= step.Version)
                continue;
            Execute(connection, transaction, step.Sql);
            using (var insert = connection.CreateCommand())
            {
                insert.Transaction = transaction;
                insert.CommandText = "INSERT INTO schema_version (version, name, applied_at) VALUES ($v, $n, $t)";
                insert.Parameters.AddWithValue("$v", step.Version);
                insert.Parameters.AddWithValue("$n", step.Name);
                insert.Parameters.AddWithValue("$t", DbTime.ToText(time.GetUtcNow()));
                insert.ExecuteNonQuery();
            }

            transaction.Commit();
            applied++;
        }

        return applied;
    }

    public static int CurrentVersion(SqliteConnection connection, SqliteTransaction? transaction = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        return Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static List<Step> LoadSteps()
    {
        var assembly = typeof(Migrator).Assembly;
        var steps = new List<Step>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            var name = resource[ResourcePrefix.Length..^".sql".Length];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name[..underscore], NumberStyles.None, CultureInfo.InvariantCulture, out var version))
                throw new InvalidOperationException($"migration {resource} is not named NNNN_name.sql");
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            steps.Add(new Step(version, name, reader.ReadToEnd()));
        }

        steps.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (int i = 1; i < steps.Count; i++)
        {
            if (steps[i].Version == steps[i - 1].Version)
                throw new InvalidOperationException($"two migrations share version {steps[i].Version}");
        }

        return steps;
    }
}

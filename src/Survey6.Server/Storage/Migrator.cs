using Survey6.Data;

namespace Survey6.Server.Storage;

/// <summary>
/// state.db's schema: the embedded <c>Storage/Migrations/NNNN_name.sql</c> steps, applied by the shared
/// <see cref="SqliteMigrator"/> (each in its own BEGIN IMMEDIATE transaction with its row in <c>schema_version</c>).
/// state.db has always used this scheme, so no earlier file needs adopting.
/// </summary>
public static class Migrator
{
    private const string ResourcePrefix = "Survey6.Server.Migrations.";

    /// <summary>Every step shipped with this build, in version order.</summary>
    public static IReadOnlyList<SqliteMigration> Steps { get; } = SqliteMigrator.FromResources(typeof(Migrator).Assembly, ResourcePrefix);

    /// <summary>Creates the file owner-only if missing and applies pending steps; returns how many were applied.</summary>
    public static int Migrate(StateDatabase database, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        return SqliteMigrator.Migrate(database.Path, database.ConnectionString, Steps, adoptVersion: null, time);
    }
}

using Microsoft.Data.Sqlite;
using Survey6.Server.Pki;

namespace Survey6.Server.Storage;

/// <summary>
/// DATA/state.db. Each operation opens a pooled connection, does its work (in a transaction when
/// it writes more than one row) and closes it; WAL mode lets the running server and the CLI's
/// token commands use the file at the same time.
/// </summary>
public sealed class StateDatabase
{
    private readonly string _connectionString;

    public StateDatabase(string path)
    {
        Path = path;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 30, // seconds a writer waits for another's lock before failing
        }.ToString();
    }

    public string Path { get; }

    internal string ConnectionString => _connectionString;

    /// <summary>Creates the file owner-only if missing, switches it to WAL and applies pending migrations.</summary>
    public static StateDatabase OpenAndMigrate(string path)
    {
        var database = new StateDatabase(path);
        Migrator.Migrate(database);
        return database;
    }

    public SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    /// <summary>Runs a query and maps every row; for the small listings operators ask for (tokens, API tokens).</summary>
    public IReadOnlyList<T> List<T>(string sql, Func<SqliteDataReader, T> read)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
            rows.Add(read(reader));
        return rows;
    }

    /// <summary>Sets <c>revoked_at</c> on one row of a table keyed by <c>id</c>; revoking twice keeps the first time. False if there is no such row.</summary>
    public bool RevokeById(string table, string id, DateTimeOffset now)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE {table} SET revoked_at = COALESCE(revoked_at, $now) WHERE id = $id";
        command.Parameters.AddWithValue("$now", DbTime.ToText(now));
        command.Parameters.AddWithValue("$id", id);
        return command.ExecuteNonQuery() == 1;
    }
}

using Microsoft.Data.Sqlite;

namespace Survey6.Data.Tests;

public sealed class SqliteMigratorTests : IDisposable
{
    private static readonly SqliteMigration[] Steps =
    [
        new(1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"),
        new(2, "item colour", "ALTER TABLE items ADD COLUMN colour TEXT;"),
    ];

    private readonly string _dir = Directory.CreateTempSubdirectory("survey6-migrator-").FullName;

    private string DbPath => Path.Combine(_dir, "test.db");

    private string ConnectionString => new SqliteConnectionStringBuilder { DataSource = DbPath, Pooling = false, DefaultTimeout = 30 }.ToString();

    [Fact]
    public void A_new_file_is_created_owner_only_in_WAL_mode_and_every_step_is_applied_once()
    {
        Assert.Equal(2, SqliteMigrator.Migrate(DbPath, ConnectionString, Steps));
        Assert.Equal(0, SqliteMigrator.Migrate(DbPath, ConnectionString, Steps));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(DbPath));
        using var connection = Open();
        Assert.Equal("wal", Scalar(connection, "PRAGMA journal_mode"));
        Assert.Equal(2, SqliteMigrator.CurrentVersion(connection));
        Assert.Equal("1 items|2 item colour", Scalar(connection, "SELECT group_concat(version || ' ' || name, '|') FROM (SELECT * FROM schema_version ORDER BY version)"));
        Execute(connection, "INSERT INTO items (name, colour) VALUES ('a', 'red')");
    }

    [Fact]
    public void Connections_migrating_at_once_apply_each_step_once()
    {
        // In-process stand-in for several processes: each thread its own unpooled connection, all released together.
        using var start = new Barrier(8);
        var applied = new int[8];
        var threads = Enumerable.Range(0, 8).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            applied[i] = SqliteMigrator.Migrate(DbPath, ConnectionString, Steps);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Equal(2, applied.Sum());
        using var connection = Open();
        Assert.Equal("2", Scalar(connection, "SELECT COUNT(*) FROM schema_version"));
    }

    [Fact]
    public void A_file_of_an_earlier_scheme_is_adopted_at_its_version_and_only_the_newer_steps_run()
    {
        using (var connection = Open())
        {
            // The earlier scheme: step 1 applied, its count kept elsewhere, a row of data.
            Execute(connection, Steps[0].Sql + "INSERT INTO items (name) VALUES ('kept'); PRAGMA user_version = 1;");
        }

        var asked = 0;
        var applied = SqliteMigrator.Migrate(DbPath, ConnectionString, Steps, (c, tx) =>
        {
            asked++;
            using var command = c.CreateCommand();
            command.Transaction = tx;
            command.CommandText = "PRAGMA user_version";
            return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        });

        Assert.Equal(1, applied); // step 2 only
        Assert.Equal(1, asked);
        using var check = Open();
        Assert.Equal("kept", Scalar(check, "SELECT name FROM items"));
        Assert.Equal("1|2", Scalar(check, "SELECT group_concat(version, '|') FROM (SELECT version FROM schema_version ORDER BY version)"));
        // Once recorded, the earlier scheme is not asked again.
        Assert.Equal(0, SqliteMigrator.Migrate(DbPath, ConnectionString, Steps, (_, _) => throw new InvalidOperationException("asked twice")));
    }

    [Fact]
    public void A_file_newer_than_the_program_is_refused_and_left_alone()
    {
        var e = Assert.Throws<InvalidOperationException>(() => SqliteMigrator.Migrate(DbPath, ConnectionString, Steps, (_, _) => 7));
        Assert.Contains("version 7, newer than this program's 2", e.Message, StringComparison.Ordinal);
        using var connection = Open();
        Assert.Equal(0, SqliteMigrator.CurrentVersion(connection));
    }

    [Fact]
    public void Steps_with_a_gap_are_refused_before_any_runs()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            SqliteMigrator.Migrate(DbPath, ConnectionString, [Steps[0], new SqliteMigration(3, "skips two", "SELECT 1;")]));
        Assert.Contains("step 2 is 'skips two' with version 3", e.Message, StringComparison.Ordinal);
        using var connection = Open();
        Assert.Equal("0", Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'items'"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        return connection;
    }

    private static string? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

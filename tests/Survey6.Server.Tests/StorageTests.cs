using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;
using Survey6.Data;
using Survey6.Server.Enrollment;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class StorageTests : IDisposable
{
    private readonly string _root = TempDirectory.Create();

    public void Dispose()
    {
        SqliteConnection.ClearAllPools(); // release the files before deleting them
        TempDirectory.Delete(_root);
    }

    [Fact]
    public void Migrations_bring_an_empty_database_to_the_latest_version_once()
    {
        var path = Path.Combine(_root, "state.db");
        var database = new StateDatabase(path);
        Assert.Equal(Migrator.Steps.Count, Migrator.Migrate(database));
        Assert.Equal(0, Migrator.Migrate(database));
        Assert.Equal(0, StateDatabase.OpenAndMigrate(path) is { } again ? Migrator.Migrate(again) : -1);

        using var connection = database.Open();
        Assert.Equal(Migrator.Steps.Count, SqliteMigrator.CurrentVersion(connection));
        Assert.Equal("wal", Scalar(connection, "PRAGMA journal_mode"));
        Assert.Equal(Migrator.Steps.Count, Convert.ToInt32(Scalar(connection, "SELECT COUNT(*) FROM schema_version")));
        foreach (var table in new[] { "tokens", "probes", "certificates", "events", "settings" })
            Assert.Equal(table, Scalar(connection, $"SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"));
    }

    [Fact]
    public void A_state_db_migrated_by_the_earlier_code_is_recognised_and_keeps_its_rows()
    {
        // The earlier Migrator: schema_version created outside the steps, each step and its row in one transaction,
        // applied_at in DbTime's format. Then a token, as a server would have stored one.
        var path = Path.Combine(_root, "state.db");
        using (var connection = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            connection.Open();
            Execute(connection, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);");
            foreach (var step in Migrator.Steps)
                Execute(connection, $"BEGIN IMMEDIATE; {step.Sql} INSERT INTO schema_version VALUES ({step.Version}, '{step.Name}', '2025-01-01T00:00:00.000Z'); COMMIT;");
        }
        var token = new TokenStore(new StateDatabase(path), TimeProvider.System).Create(TimeSpan.FromHours(1), 1, new Dictionary<string, string>(), "before the upgrade");

        var database = StateDatabase.OpenAndMigrate(path);

        Assert.Equal(0, Migrator.Migrate(database));
        using var check = database.Open();
        Assert.Equal(Migrator.Steps.Count, SqliteMigrator.CurrentVersion(check));
        Assert.Equal(Migrator.Steps.Count, Convert.ToInt32(Scalar(check, "SELECT COUNT(*) FROM schema_version")));
        Assert.Equal("before the upgrade", Assert.Single(new TokenStore(database, TimeProvider.System).List(), t => t.Id == token.Info.Id).Description);
    }

    [Fact]
    public void Migration_steps_are_numbered_from_one_without_gaps()
    {
        Assert.Equal(Enumerable.Range(1, Migrator.Steps.Count), Migrator.Steps.Select(s => s.Version));
    }

    [Fact]
    public void Database_file_is_owner_only()
    {
        var path = Path.Combine(_root, "state.db");
        StateDatabase.OpenAndMigrate(path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Tokens_keep_only_the_hash_of_their_secret()
    {
        var database = StateDatabase.OpenAndMigrate(Path.Combine(_root, "state.db"));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new TokenStore(database, time);
        var created = store.Create(TimeSpan.FromHours(24), 2, new Dictionary<string, string> { ["site"] = "lab" }, "rack 4");

        Assert.Matches("^[a-z0-9]{6}\\.[a-z0-9]{16}$", created.Token);
        using var connection = database.Open();
        var secret = created.Token[7..];
        Assert.Equal(0L, Scalar(connection, $"SELECT COUNT(*) FROM tokens WHERE secret_sha256 = '{secret}' OR id = '{secret}'"));
        Assert.Equal(JoinToken.HashSecret(secret), Scalar(connection, "SELECT secret_sha256 FROM tokens"));

        var listed = Assert.Single(store.List());
        Assert.Equal("active", listed.Status(time.GetUtcNow()));
        Assert.Equal("lab", listed.Labels["site"]);
        Assert.Equal("rack 4", listed.Description);
        time.Advance(TimeSpan.FromHours(24));
        Assert.Equal("expired", store.List().Single().Status(time.GetUtcNow()));
        Assert.True(store.Revoke(listed.Id));
        Assert.Equal("revoked", store.List().Single().Status(time.GetUtcNow()));
        Assert.False(store.Revoke("nosuch"));
    }

    [Theory]
    [InlineData("abcdef.0123456789abcdef", true)]
    [InlineData("abcdef.0123456789abcde", false)]
    [InlineData("abcdef0123456789abcdef0", false)]
    [InlineData("abcde!.0123456789abcdef", false)]
    [InlineData(" abcdef.0123456789abcdef", false)]
    [InlineData("", false)]
    public void Token_shape(string token, bool valid) => Assert.Equal(valid, JoinToken.TryParse(token, out _, out _));

    [Fact]
    public void Generated_tokens_and_probe_ids_have_their_shapes()
    {
        var tokens = Enumerable.Range(0, 200).Select(_ => JoinToken.Generate()).ToList();
        Assert.All(tokens, t => Assert.True(JoinToken.TryParse(t, out _, out _), t));
        Assert.Equal(tokens.Count, tokens.Distinct().Count());
        Assert.All(Enumerable.Range(0, 200).Select(_ => ProbeIds.New()), id => Assert.Matches("^p-[a-z2-7]{12}$", id));
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}

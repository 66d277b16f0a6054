namespace Survey6.Server.Storage;

/// <summary>Key/value facts in state.db that one process writes and another reads.</summary>
public sealed class SettingsStore(StateDatabase database)
{
    /// <summary>The URL probes join, written by a running server once it has bound its port.</summary>
    public const string ServerUrl = "server_url";

    /// <summary>Why failing uploads make the running server degraded (<c>Uploads.UploadFailures</c>); empty when they do not.</summary>
    public const string UploadFailures = "upload_failures";

    public string? Get(string key)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT value FROM settings WHERE key = $key";
        command.Parameters.AddWithValue("$key", key);
        return command.ExecuteScalar() as string;
    }

    public void Set(string key, string value) => Set((key, value));

    /// <summary>The key's value; <paramref name="value"/> is stored first if the key has none (the first writer wins).</summary>
    public string GetOrAdd(string key, string value)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO settings (key, value) VALUES ($key, $value) ON CONFLICT(key) DO NOTHING;
            SELECT value FROM settings WHERE key = $key;
            """;
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$value", value);
        return (string)command.ExecuteScalar()!;
    }

    /// <summary>Sets every pair in one transaction: a reader sees all of them or none.</summary>
    public void Set(params (string Key, string Value)[] pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        foreach (var (key, value) in pairs)
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO settings (key, value) VALUES ($key, $value) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
            command.Parameters.AddWithValue("$key", key);
            command.Parameters.AddWithValue("$value", value);
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }
}

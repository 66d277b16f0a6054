using Microsoft.Data.Sqlite;
using Survey6.Server.Storage;

namespace Survey6.Server.Api;

/// <summary>An API token as listed: everything but the secret.</summary>
public sealed record ApiTokenInfo(
    string Id,
    string Name,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsedAt)
{
    /// <summary>active, revoked or expired.</summary>
    public string Status(DateTimeOffset now) => RefusalAt(now) switch
    {
        ApiTokenRefusal.None => "active",
        var refusal => refusal.Name(),
    };

    internal ApiTokenRefusal RefusalAt(DateTimeOffset now) =>
        RevokedAt is not null ? ApiTokenRefusal.Revoked
        : ExpiresAt is { } expiry && now >= expiry ? ApiTokenRefusal.Expired
        : ApiTokenRefusal.None;
}

/// <summary>A new API token: <see cref="Token"/> is the only time the secret is seen.</summary>
public sealed record CreatedApiToken(string Token, ApiTokenInfo Info);

/// <summary>API tokens in state.db (table <c>api_tokens</c>).</summary>
public sealed class ApiTokenStore(StateDatabase database, TimeProvider time)
{
    public const int MaxNameLength = 100;

    // Writing last_used_at on every call would turn each API read into a database write.
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    private const string Columns = "id, name, created_at, expires_at, revoked_at, last_used_at";

    /// <summary>Creates a token valid for <paramref name="ttl"/> (null: never expires).</summary>
    public CreatedApiToken Create(string name, TimeSpan? ttl)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(name.Length, MaxNameLength, nameof(name));
        if (ttl is { } t)
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(t, TimeSpan.Zero, nameof(ttl));
        var now = time.GetUtcNow();
        var token = ApiToken.Generate();
        if (!ApiToken.TryParse(token, out var id, out var secret))
            throw new InvalidOperationException("generated a malformed API token");
        var info = new ApiTokenInfo(id, name, now, now + ttl, null, null);
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO api_tokens (id, name, secret_sha256, created_at, expires_at)
            VALUES ($id, $name, $hash, $created, $expires)
            """;
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$hash", ApiToken.HashSecret(secret));
        command.Parameters.AddWithValue("$created", DbTime.ToText(now));
        command.Parameters.AddWithValue("$expires", info.ExpiresAt is { } e ? DbTime.ToText(e) : DBNull.Value);
        command.ExecuteNonQuery();
        return new CreatedApiToken(token, info);
    }

    public IReadOnlyList<ApiTokenInfo> List() => database.List($"SELECT {Columns} FROM api_tokens ORDER BY created_at, id", Read);

    /// <summary>Revokes a token; false if there is no such token. Revoking twice keeps the first time.</summary>
    public bool Revoke(string id) => database.RevokeById("api_tokens", id, time.GetUtcNow());

    /// <summary>
    /// Checks a presented token. A wrong secret reads as unknown: only holders of the secret learn
    /// that a token was revoked or expired.
    /// </summary>
    public (ApiTokenRefusal Refusal, ApiTokenInfo? Token) Authenticate(string? presented)
    {
        if (string.IsNullOrEmpty(presented))
            return (ApiTokenRefusal.Missing, null);
        if (!ApiToken.TryParse(presented, out var id, out var secret))
            return (ApiTokenRefusal.Malformed, null);

        using var connection = database.Open();
        ApiTokenInfo info;
        string hash;
        using (var select = connection.CreateCommand())
        {
            select.CommandText = $"SELECT {Columns}, secret_sha256 FROM api_tokens WHERE id = $id";
            select.Parameters.AddWithValue("$id", id);
            using var reader = select.ExecuteReader();
            if (!reader.Read())
                return (ApiTokenRefusal.Unknown, null);
            info = Read(reader);
            hash = reader.GetString(6);
        }

        if (!ApiToken.SecretMatches(secret, hash))
            return (ApiTokenRefusal.Unknown, null);
        var now = time.GetUtcNow();
        var refusal = info.RefusalAt(now);
        if (refusal != ApiTokenRefusal.None)
            return (refusal, info);

        if (info.LastUsedAt is not { } last || now - last >= LastUsedResolution)
            Touch(connection, id, now);
        return (ApiTokenRefusal.None, info);
    }

    private static void Touch(SqliteConnection connection, string id, DateTimeOffset now)
    {
        using var update = connection.CreateCommand();
        update.CommandText = "UPDATE api_tokens SET last_used_at = $now WHERE id = $id";
        update.Parameters.AddWithValue("$now", DbTime.ToText(now));
        update.Parameters.AddWithValue("$id", id);
        update.ExecuteNonQuery();
    }

    private static ApiTokenInfo Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        DbTime.Parse(reader.GetString(2)),
        DbTime.ParseNullable(reader.GetValue(3)),
        DbTime.ParseNullable(reader.GetValue(4)),
        DbTime.ParseNullable(reader.GetValue(5)));
}

using System.Globalization;
using Microsoft.Data.Sqlite;
using Survey6.Server.Enrollment;

namespace Survey6.Server.Storage;

/// <summary>A join token as listed: everything but the secret.</summary>
public sealed record JoinTokenInfo(
    string Id,
    string Description,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    int MaxUses,
    int Used,
    DateTimeOffset? RevokedAt)
{
    /// <summary>active, or the refusal a join with this token would get now.</summary>
    public string Status(DateTimeOffset now) => StatusAt(now) is var r && r == TokenRefusal.None ? "active" : r.Name();

    internal TokenRefusal StatusAt(DateTimeOffset now) =>
        RevokedAt is not null ? TokenRefusal.Revoked
        : ExpiresAt is { } expiry && now >= expiry ? TokenRefusal.Expired
        : Used >= MaxUses ? TokenRefusal.UsedUp
        : TokenRefusal.None;
}

/// <summary>A new token: <see cref="Token"/> is the only time the secret is seen.</summary>
public sealed record CreatedJoinToken(string Token, JoinTokenInfo Info);

/// <summary>Join tokens in state.db.</summary>
public sealed class TokenStore(StateDatabase database, TimeProvider time)
{
    /// <summary>Creates a token valid for <paramref name="ttl"/> (null: never expires) and <paramref name="maxUses"/> joins.</summary>
    public CreatedJoinToken Create(TimeSpan? ttl, int maxUses, IReadOnlyDictionary<string, string> labels, string description)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxUses, 1);
        if (ttl is { } t)
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(t, TimeSpan.Zero, nameof(ttl));
        var now = time.GetUtcNow();
        var token = JoinToken.Generate();
        if (!JoinToken.TryParse(token, out var id, out var secret))
            throw new InvalidOperationException("generated a malformed token");
        var info = new JoinTokenInfo(id, description, labels, now, now + ttl, maxUses, 0, null);
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO tokens (id, secret_sha256, description, labels_json, created_at, expires_at, max_uses)
            VALUES ($id, $hash, $description, $labels, $created, $expires, $max)
            """;
        command.Parameters.AddWithValue("$id", info.Id);
        command.Parameters.AddWithValue("$hash", JoinToken.HashSecret(secret));
        command.Parameters.AddWithValue("$description", description);
        command.Parameters.AddWithValue("$labels", Storage.Labels.ToJson(labels));
        command.Parameters.AddWithValue("$created", DbTime.ToText(now));
        command.Parameters.AddWithValue("$expires", info.ExpiresAt is { } e ? DbTime.ToText(e) : DBNull.Value);
        command.Parameters.AddWithValue("$max", maxUses);
        command.ExecuteNonQuery();
        return new CreatedJoinToken(token, info);
    }

    public IReadOnlyList<JoinTokenInfo> List() => database.List($"SELECT {Columns} FROM tokens ORDER BY created_at, id", Read);

    /// <summary>Revokes a token; false if there is no such token. Revoking twice keeps the first time.</summary>
    public bool Revoke(string id) => database.RevokeById("tokens", id, time.GetUtcNow());

    /// <summary>
    /// Checks a presented token and, if it is good, counts one use, inside the caller's transaction
    /// so the use is undone if the join fails later. A wrong secret reads as unknown: only holders
    /// of the secret learn whether a token expired, was revoked or is used up.
    /// </summary>
    internal (TokenRefusal Refusal, JoinTokenInfo? Token) Consume(SqliteConnection connection, SqliteTransaction transaction, string? presented)
    {
        if (!JoinToken.TryParse(presented, out var id, out var secret))
            return (TokenRefusal.Malformed, null);

        JoinTokenInfo info;
        string hash;
        using (var select = connection.CreateCommand())
        {
            select.Transaction = transaction;
            select.CommandText = $"SELECT {Columns}, secret_sha256 FROM tokens WHERE id = $id";
            select.Parameters.AddWithValue("$id", id);
            using var reader = select.ExecuteReader();
            if (!reader.Read())
                return (TokenRefusal.Unknown, null);
            info = Read(reader);
            hash = reader.GetString(8);
        }

        if (!JoinToken.SecretMatches(secret, hash))
            return (TokenRefusal.Unknown, null);
        var refusal = info.StatusAt(time.GetUtcNow());
        if (refusal != TokenRefusal.None)
            return (refusal, info);

        using (var update = connection.CreateCommand())
        {
            update.Transaction = transaction;
            update.CommandText = "UPDATE tokens SET used = used + 1 WHERE id = $id AND used < max_uses";
            update.Parameters.AddWithValue("$id", id);
            if (update.ExecuteNonQuery() != 1)
                return (TokenRefusal.UsedUp, info);
        }

        return (TokenRefusal.None, info with { Used = info.Used + 1 });
    }

    private const string Columns = "id, description, labels_json, created_at, expires_at, max_uses, used, revoked_at";

    private static JoinTokenInfo Read(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetString(1),
        Storage.Labels.FromJson(reader.GetString(2)),
        DbTime.Parse(reader.GetString(3)),
        DbTime.ParseNullable(reader.GetValue(4)),
        Convert.ToInt32(reader.GetInt64(5), CultureInfo.InvariantCulture),
        Convert.ToInt32(reader.GetInt64(6), CultureInfo.InvariantCulture),
        DbTime.ParseNullable(reader.GetValue(7)));
}

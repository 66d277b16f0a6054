using Microsoft.Extensions.Options;
using Npgsql;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// The stage lock of workers whose ledger is PostgreSQL: session-level advisory locks in the ledger's database,
/// <c>pg_try_advisory_lock_shared</c> for queue-fed parse runs and <c>pg_try_advisory_lock</c> for the stages that
/// run alone, with a gate key as <see cref="StageLock"/> has a gate file. Each holder keeps its own unpooled
/// connection for as long as it holds the lock; closing it ends the session and PostgreSQL drops the locks, as it
/// does when the holder's process dies (its socket closes) or, with TCP keepalives on the server, when its host is
/// lost. No file system is involved, so workers on different hosts need not share one with working locks.
/// </summary>
public sealed class PostgresStageLocks : IStageLocks
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);
    private readonly string _connectionString;

    public PostgresStageLocks(IOptions<AggregatorOptions> options)
        : this(options.Value.Ledger.ConnectionString ?? throw new InvalidOperationException("Aggregator:Ledger:ConnectionString is not set."))
    {
    }

    public PostgresStageLocks(string connectionString)
    {
        var builder = PostgresRunLedger.Parse(connectionString);
        // A pooled connection would go back to the pool on close with its session, and its locks, still open.
        builder.Pooling = false;
        builder.ApplicationName ??= "survey6-aggregator-lock";
        _connectionString = builder.ConnectionString;
        Where = $"advisory lock ({PostgresLocks.Class}, {PostgresLocks.Stages}) in {PostgresRunLedger.Describe(builder)}";
    }

    public string Where { get; }

    public async Task<IDisposable?> TryAcquireAsync(bool shared, TimeSpan wait, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + wait;
        var connection = new NpgsqlConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            // Exclusive: hold the gate while waiting, so no new shared holder gets in and the current ones finish.
            // Shared: pass through the gate (it is free unless an exclusive holder waits), then let it go.
            if (!await TryLockAsync(connection, PostgresLocks.Gate, shared, deadline, ct).ConfigureAwait(false))
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                return null;
            }
            var held = await TryLockAsync(connection, PostgresLocks.Stages, shared, deadline, ct).ConfigureAwait(false);
            await using (var unlock = new NpgsqlCommand(
                $"SELECT pg_advisory_unlock{(shared ? "_shared" : "")}({PostgresLocks.Class}, {PostgresLocks.Gate})", connection))
            {
                await unlock.ExecuteScalarAsync(ct).ConfigureAwait(false);
            }
            if (!held)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                return null;
            }
            return new Held(connection);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<bool> TryLockAsync(NpgsqlConnection connection, int key, bool shared, DateTime deadline, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"SELECT pg_try_advisory_lock{(shared ? "_shared" : "")}({PostgresLocks.Class}, {key})", connection);
        while (true)
        {
            if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is true)
                return true;
            if (DateTime.UtcNow >= deadline)
                return false;
            await Task.Delay(Poll, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The lock's session: disposing it closes the connection, which releases the lock.</summary>
    private sealed class Held(NpgsqlConnection connection) : IDisposable
    {
        public void Dispose() => connection.Dispose();
    }
}

using System.Data.Common;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// The ledger in PostgreSQL (<c>Aggregator:Ledger:ConnectionString</c>), for workers on several hosts: the same
/// tables and statements as the embedded SQLite ledger (<see cref="SqlRunLedger"/>, <see cref="LedgerMigrations"/>),
/// migrated at first use under an advisory lock (<see cref="PostgresMigrator"/>). The stage lock of such workers is
/// PostgreSQL's too (<see cref="PostgresStageLocks"/>), so nothing depends on a shared file system's locks.
/// </summary>
public sealed class PostgresRunLedger : SqlRunLedger
{
    private readonly string _connectionString;

    public PostgresRunLedger(IOptions<AggregatorOptions> options, TimeProvider time)
        : this(options.Value.Ledger.ConnectionString ?? throw new InvalidOperationException("Aggregator:Ledger:ConnectionString is not set."), time)
    {
    }

    /// <summary>Connects, and applies the pending schema steps; an unreachable server or a bad string fails here, saying which.</summary>
    public PostgresRunLedger(string connectionString, TimeProvider time)
        : base(time)
    {
        var builder = Parse(connectionString);
        builder.ApplicationName ??= "survey6-aggregator";
        _connectionString = builder.ConnectionString;
        Location = Describe(builder);
        Use(c => PostgresMigrator.Migrate(c, LedgerMigrations.PostgresSteps, time));
    }

    private PostgresRunLedger(NpgsqlConnectionStringBuilder builder, TimeProvider time)
        : base(time)
    {
        _connectionString = builder.ConnectionString;
        Location = Describe(builder);
    }

    /// <summary>
    /// The ledger in <paramref name="connectionString"/>'s database for reading, as the C&amp;C's data page reads it:
    /// nothing is created or migrated. Null while the aggregator has not made its tables there yet.
    /// </summary>
    public static PostgresRunLedger? OpenExisting(string connectionString, TimeProvider time)
    {
        var builder = Parse(connectionString);
        builder.ApplicationName ??= "survey6-ledger-reader";
        var ledger = new PostgresRunLedger(builder, time);
        return ledger.Use(c =>
        {
            using var command = new NpgsqlCommand("SELECT to_regclass('runs') IS NOT NULL", c);
            return command.ExecuteScalar() is true;
        }) ? ledger : null;
    }

    public override string Location { get; }

    public override int SchemaVersion => Use(c => PostgresMigrator.CurrentVersion(c));

    protected override DbConnection Open()
    {
        var connection = new NpgsqlConnection(_connectionString);
        connection.Open();
        return connection;
    }

    /// <summary><paramref name="connectionString"/> read, or why it cannot be (without echoing it: it may hold a password).</summary>
    public static NpgsqlConnectionStringBuilder Parse(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new ArgumentException("Aggregator:Ledger:ConnectionString is empty.");
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException)
        {
            throw new ArgumentException("Aggregator:Ledger:ConnectionString is not a PostgreSQL connection string (Host=...;Database=...;Username=...): " + e.Message);
        }
        if (string.IsNullOrWhiteSpace(builder.Host))
            throw new ArgumentException("Aggregator:Ledger:ConnectionString names no Host (a host name, an address, or the folder of a Unix socket).");
        if (string.IsNullOrWhiteSpace(builder.Database))
            throw new ArgumentException("Aggregator:Ledger:ConnectionString names no Database.");
        return builder;
    }

    /// <summary>For people and logs: <c>postgresql://HOST:PORT/DATABASE</c>, never the password.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}";
    }

    private T Use<T>(Func<NpgsqlConnection, T> action)
    {
        try
        {
            using var connection = (NpgsqlConnection)Open();
            return action(connection);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or SocketException)
        {
            // Not chained: the one line a command prints should say it is the ledger's PostgreSQL, not just "refused".
            throw new LedgerUnavailableException($"The ledger's PostgreSQL {Location} (Aggregator:Ledger:ConnectionString) cannot be used: {e.GetType().Name}: {Innermost(e)}");
        }
    }

    private static string Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e.Message;
}

/// <summary>The ledger's database cannot be reached or used; the message says which and why.</summary>
public sealed class LedgerUnavailableException(string message) : InvalidOperationException(message);

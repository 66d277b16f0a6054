using System.Data.Common;
using DuckDB.NET.Data;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Query;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// The shared lake reader asks again when a partition file it listed is gone or replaced by the time DuckDB opens it
/// (the aggregator swapping a partition), and only then.
/// </summary>
public sealed class LakeQueryTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "survey6-lakequery-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly LakeLayout _lake;
    private readonly string _partition;

    public LakeQueryTests()
    {
        _lake = new LakeLayout(_root);
        _partition = Path.Combine(_lake.DatePartition(LakeLayout.Flows, new DateOnly(2024, 5, 1)), LakeLayout.ProbePart("probe-a"), "2024-05-01.0123456789abcdef.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(_partition)!);
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"COPY (SELECT range AS packets FROM range(3)) TO {AggregateSql.Quote(_partition)} (FORMAT parquet)";
        command.ExecuteNonQuery();
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static long Count(DuckDBConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM flows";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs the count with the partition file moved away (DuckDB fails to find it), then puts it back.</summary>
    private long CountWhileGone(DuckDBConnection connection)
    {
        var aside = _partition + ".aside";
        File.Move(_partition, aside);
        try
        {
            return Count(connection);
        }
        finally
        {
            File.Move(aside, _partition);
        }
    }

    [Fact]
    public void A_partition_gone_while_read_is_read_again()
    {
        int calls = 0;
        long rows = LakeQuery.Read(_root, (connection, views) =>
        {
            Assert.Contains(LakeLayout.Flows, views);
            return ++calls == 1 ? CountWhileGone(connection) : Count(connection);
        });

        Assert.Equal(3, rows);
        Assert.Equal(2, calls);
    }

    [Fact]
    public void A_read_that_may_not_be_repeated_fails_at_once()
    {
        int calls = 0;
        var e = Assert.ThrowsAny<DbException>(() => LakeQuery.Read(_root, (connection, _) =>
        {
            calls++;
            return CountWhileGone(connection);
        }, mayRetry: () => false));

        Assert.True(LakeQuery.ReplacedWhileRead(e), e.Message);
        Assert.Equal(1, calls);
    }

    [Fact]
    public void A_partition_that_stays_gone_fails_after_the_last_attempt()
    {
        int calls = 0;
        var e = Assert.ThrowsAny<DbException>(() => LakeQuery.Read(_root, (connection, _) =>
        {
            calls++;
            return CountWhileGone(connection);
        }));

        Assert.True(LakeQuery.ReplacedWhileRead(e), e.Message);
        Assert.Equal(LakeQuery.MaxAttempts, calls);
    }

    [Fact]
    public void Any_other_error_is_not_retried()
    {
        int calls = 0;
        var e = Assert.ThrowsAny<DbException>(() => LakeQuery.Read(_root, (connection, _) =>
        {
            calls++;
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT no_such_column FROM flows";
            return command.ExecuteScalar();
        }));

        Assert.False(LakeQuery.ReplacedWhileRead(e), e.Message);
        Assert.Equal(1, calls);
    }
}

using Microsoft.Data.Sqlite;
using Survey6.Testbed;
using Xunit.Abstractions;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// Several processes meeting a fresh data folder at once, as when a service manager starts the C&amp;C and its
/// workers together: each creates the ledger and the ingest queue's file, and each must find the schema whole,
/// whoever migrated it. Before the shared migration helper read the version inside the write transaction, a few
/// of these runs died with "table runs already exists".
/// </summary>
public sealed class FirstStartRaceTests(ITestOutputHelper output)
{
    private const int Rounds = 20;
    private const int Processes = 4;

    [Fact]
    public async Task Four_aggregate_once_started_together_on_a_fresh_data_folder_all_succeed_and_find_the_schema_whole()
    {
        var root = Path.Combine(Path.GetTempPath(), "survey6-race-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        try
        {
            for (int round = 0; round < Rounds; round++)
            {
                var data = Path.Combine(root, "round-" + round);
                Directory.CreateDirectory(data); // empty, as an operator makes it: aggregate once creates no directory
                // --source queue: every process opens the SQLite ingest queue (ingest.db) as well as the ledger. The parse
                // stage alone builds everything a run needs (ledger, queue, lake) without the aggregate stage's DuckDB.
                var children = Enumerable.Range(0, Processes)
                    .Select(i => ChildProcess.Start($"round {round} process {i}",
                        ["aggregate", "once", "--stage", "parse", "--data-dir", data, "--source", "queue"], workingDirectory: root))
                    .ToList();
                try
                {
                    foreach (var child in children)
                    {
                        Assert.True(await child.WaitForExitAsync(TimeSpan.FromMinutes(3)), $"{child.Name} did not finish:\n{child.Output}");
                        Assert.True(child.ExitCode == 0, $"{child.Name} exited {child.ExitCode}:\n{child.Output}");
                    }
                }
                finally
                {
                    foreach (var child in children)
                        child.Dispose();
                }

                AssertSchema(Path.Combine(data, "aggregator.db"), "runs", "run_files", "captures", "partitions");
                AssertSchema(Path.Combine(data, "ingest.db"), "ingest_queue", "ingest_dead");
            }
            output.WriteLine($"{Rounds} rounds of {Processes} processes, none died");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The tables are there, and each migration step was recorded exactly once.</summary>
    private static void AssertSchema(string path, params string[] tables)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
        var present = new HashSet<string>(StringComparer.Ordinal);
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
                present.Add(reader.GetString(0));
        }
        foreach (var table in tables)
            Assert.Contains(table, present);
        Assert.Contains("schema_version", present);
        command.CommandText = "SELECT COUNT(*) = COUNT(DISTINCT version) AND COUNT(*) = MAX(version) FROM schema_version";
        Assert.Equal(1L, (long)command.ExecuteScalar()!);
    }
}

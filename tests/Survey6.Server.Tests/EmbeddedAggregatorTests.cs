using Survey6.Aggregator.Ledger;
using Survey6.Cli;
using Survey6.Ingest;
using Survey6.Packets.Capture;
using Survey6.Probe.Upload;
using Survey6.Server.Storage;
using Xunit.Abstractions;
using static Survey6.Server.Tests.UploadTestSupport;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// <c>survey6 server run</c> with its embedded aggregator: captures uploaded by a joined probe through the real
/// protocol are queued, taken off the queue by the server's own parse stage and land in the lake, queryable at once.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class EmbeddedAggregatorTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Uploaded_captures_become_packets_files_with_their_frame_counts()
    {
        var data = Path.Combine(_root, "server");
        using var server = await ServerProcess.StartAsync(data, 0, aggregator: true, new Dictionary<string, string>
        {
            ["Aggregator__Schedules__Parse"] = "* * * * * ?",
            ["Aggregator__Schedules__Aggregate"] = "0 0 0 1 1 ? 2099",
            ["Aggregator__Schedules__Cleanup"] = "0 0 0 1 1 ? 2099",
        });
        try
        {
            var token = new TokenStore(StateDatabase.OpenAndMigrate(Path.Combine(data, "state.db")), TimeProvider.System)
                .Create(TimeSpan.FromHours(1), 1, new Dictionary<string, string>(), "embedded aggregator").Token;
            using var probe = await JoinAsync(server.GrpcUrl, token, server.Pin, Path.Combine(_root, "probe"));

            var expected = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var (seed, size) in new[] { (1, 256 << 10), (2, 1 << 20), (3, 600 << 10) })
            {
                var bytes = Capture(seed, size);
                var path = Write(Path.Combine(_root, "spool"), bytes);
                await Uploader(probe).UploadAsync(path, Manifest(path));
                expected[Sha(bytes)] = CountFrames(path);
            }

            // The lake fills on the parse schedule (every second here), from the server's own queue.
            var ledgerPath = Path.Combine(data, "aggregator.db");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (Parsed(ledgerPath) < expected.Count)
            {
                Assert.True(DateTime.UtcNow < deadline, "the embedded aggregator did not parse the uploads:\n" + server.Output);
                await Task.Delay(200);
            }

            var ledger = new RunLedger(ledgerPath, TimeProvider.System);
            foreach (var (sha, frames) in expected)
            {
                var capture = ledger.GetCapture(sha);
                Assert.NotNull(capture);
                Assert.Equal(RunLedger.Parsed, capture.Status);
                Assert.Equal(frames, capture.Frames);
                // captures -> lake, same data folder: DATA/lake/packets/date=D/probe=P/SHA.parquet, D from the window start.
                Assert.Equal(
                    Path.Combine(data, "lake", "packets", "date=2025-03-14", "probe=" + capture.ProbeId, sha + ".parquet"),
                    capture.OutputPath);
                Assert.True(File.Exists(capture.OutputPath));
            }

            // What a researcher sees: one row per frame in the packets dataset.
            var result = new StringWriter();
            var error = new StringWriter();
            Assert.Equal(0, QueryCommand.Run("SELECT capture_sha256, count(*) AS n FROM packets GROUP BY 1 ORDER BY 1", "csv", null, data, result, error));
            var expectedCsv = "capture_sha256,n\n" + string.Concat(expected.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key},{kv.Value}\n"));
            Assert.Equal(expectedCsv, result.ToString().ReplaceLineEndings("\n"));

            // Every item was acknowledged on the queue once its file was in place.
            using var queue = new SqliteIngestQueue(Microsoft.Extensions.Options.Options.Create(new IngestOptions { Sqlite = new SqliteIngestOptions { Path = Path.Combine(data, "ingest.db") } }), TimeProvider.System);
            var stats = await queue.GetStatsAsync(CancellationToken.None);
            Assert.Equal((0, 0, 0), (stats.Pending, stats.InFlight, stats.DeadLettered));
        }
        finally
        {
            output.WriteLine(server.Output);
        }
    }

    private static long CountFrames(string path)
    {
        using var reader = CaptureReader.Open(path);
        long frames = 0;
        while (reader.TryRead(out _))
            frames++;
        Assert.Null(reader.Error);
        return frames;
    }

    private static long Parsed(string ledgerPath)
    {
        if (!File.Exists(ledgerPath))
            return 0;
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={ledgerPath};Mode=ReadOnly;Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE name = 'captures'";
        if ((long)command.ExecuteScalar()! == 0)
            return 0;
        command.CommandText = "SELECT count(*) FROM captures WHERE status = 'parsed'";
        return (long)command.ExecuteScalar()!;
    }
}

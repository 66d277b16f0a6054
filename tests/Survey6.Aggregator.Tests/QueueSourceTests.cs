using Microsoft.Extensions.DependencyInjection;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Sources;
using Survey6.Aggregator.Tests.Support;
using Survey6.Ingest;

namespace Survey6.Aggregator.Tests;

/// <summary>The parse stage fed by the ingest queue (its SQLite file in the data folder, as the C&amp;C keeps it).</summary>
public sealed class QueueSourceTests
{
    private static Workspace QueueWorkspace() => new(
        new Dictionary<string, string?> { ["Aggregator:Source"] = "Queue", ["Aggregator:RetryBackoff"] = "00:01:00" },
        (services, configuration) => services.AddSurvey6AggregatorQueue(configuration));

    private static async Task EnqueueAsync(Workspace w, string sha, string probe = "probe-a", string date = "2024-05-01")
    {
        var path = w.CapturePath(sha, probe, date);
        var queue = w.Services.GetRequiredService<IIngestQueue>();
        Assert.True(await queue.EnqueueAsync(new CaptureEnqueued(sha, probe, path, File.Exists(path) ? new FileInfo(path).Length : 0,
            w.Time.GetUtcNow(), Path.ChangeExtension(path, null) + ".manifest.json"), CancellationToken.None));
    }

    private static async Task<IngestQueueStats> StatsAsync(Workspace w) =>
        await w.Services.GetRequiredService<IIngestQueue>().GetStatsAsync(CancellationToken.None);

    [Fact]
    public async Task Queued_captures_are_parsed_or_quarantined_and_every_item_is_acked()
    {
        using var w = QueueWorkspace();
        Assert.IsType<IngestQueueCaptureSource>(w.Services.GetRequiredService<ICaptureSource>());
        var first = w.Store(AggregateTests.First());
        var second = w.Store(AggregateTests.Second());
        var bad = w.Store(System.Text.Encoding.ASCII.GetBytes("not a capture"));
        // Stored but never queued: a queue-fed parse leaves it alone (the directory scan would take it).
        var unqueued = w.Store(AggregateTests.First().Concat(AggregateTests.Second().Skip(28)).ToArray());
        foreach (var sha in new[] { first, bad, second })
            await EnqueueAsync(w, sha);

        var report = await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(3, report.Inputs);

        Assert.Equal(RunLedger.Parsed, w.Ledger.GetCapture(first)?.Status);
        Assert.Equal(RunLedger.Parsed, w.Ledger.GetCapture(second)?.Status);
        Assert.Equal(RunLedger.Quarantined, w.Ledger.GetCapture(bad)?.Status);
        Assert.Null(w.Ledger.GetCapture(unqueued));
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await StatsAsync(w));

        // Delivered again (a re-ingest, or a redelivery after a crash between ledger and ack): acked, not parsed again.
        await EnqueueAsync(w, first);
        var again = await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal((0L, 0L), (again.Inputs, again.Outputs));
        Assert.Equal(1, w.Ledger.GetCapture(first)?.Attempts);
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await StatsAsync(w));

        // Nothing queued: nothing runs and nothing is recorded.
        var runs = w.Ledger.RecentRuns(100).Count;
        var idle = await w.Runner.RunAsync(AggregatorStage.Parse, TimeSpan.Zero, CancellationToken.None);
        Assert.Equal(AggregatorRunner.NoRun, idle?.RunId);
        Assert.Equal(runs, w.Ledger.RecentRuns(100).Count);
    }

    [Fact]
    public async Task A_failed_capture_is_acked_and_retried_by_cleanup_after_its_back_off()
    {
        using var w = QueueWorkspace();
        var content = AggregateTests.First();
        var sha = w.Store(content);
        var path = w.CapturePath(sha);
        File.Move(path, path + ".away");
        await EnqueueAsync(w, sha);

        await w.RunAsync(AggregatorStage.Parse);
        var failed = w.Ledger.GetCapture(sha);
        Assert.Equal(RunLedger.Failed, failed?.Status);
        Assert.StartsWith("cannot open", failed?.Reason, StringComparison.Ordinal);
        // The ledger holds the retry; the queue item is done.
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await StatsAsync(w));

        File.Move(path + ".away", path);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.Equal(RunLedger.Failed, w.Ledger.GetCapture(sha)?.Status); // back-off not over yet
        w.Time.Now += TimeSpan.FromMinutes(2);
        await w.RunAsync(AggregatorStage.Cleanup);
        var parsed = w.Ledger.GetCapture(sha);
        Assert.Equal((RunLedger.Parsed, 2), (parsed?.Status, parsed?.Attempts));
    }

    [Fact]
    public async Task Once_drains_the_queue_when_the_data_folder_has_one_and_status_shows_it()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Ingest:MaxAttempts"] = "1" },
            (services, configuration) => services.AddSurvey6AggregatorQueue(configuration));
        var queued = w.Store(AggregateTests.First());
        var scanOnly = w.Store(AggregateTests.Second());
        await EnqueueAsync(w, queued);
        var another = w.Store(new CaptureFile()
            .Add(CaptureFile.At(10, 0, 0), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, FrameBuilder.Udp(1000, 53, new byte[8]))))
            .ToArray());
        await EnqueueAsync(w, another);
        // The first delivery of the first item fails with MaxAttempts = 1: the queue dead-letters it; it is queued again.
        var queue = w.Services.GetRequiredService<IIngestQueue>();
        var lease = await queue.TryDequeueAsync("elsewhere", CancellationToken.None);
        Assert.Equal(queued, lease?.Item.Sha256);
        Assert.True(await queue.NackAsync(lease!, "boom", null, CancellationToken.None));
        await EnqueueAsync(w, queued);

        var output = new StringWriter();
        Assert.Equal(0, await Cli.AggregateCommands.OnceAsync("parse", w.DataDirectory, null, includeOpen: false, output, CancellationToken.None));
        Assert.StartsWith("parse: succeeded", output.ToString(), StringComparison.Ordinal);
        Assert.Contains(": 2 inputs", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(RunLedger.Parsed, w.Ledger.GetCapture(queued)?.Status);
        Assert.Equal(RunLedger.Parsed, w.Ledger.GetCapture(another)?.Status);
        Assert.Null(w.Ledger.GetCapture(scanOnly)); // auto chose the queue, not the scan

        output = new StringWriter();
        Assert.Equal(0, await Cli.AggregateCommands.OnceAsync("parse", w.DataDirectory, null, includeOpen: false, output, CancellationToken.None));
        Assert.Equal("parse: nothing queued", output.ToString().Trim());

        output = new StringWriter();
        Assert.Equal(0, Cli.AggregateCommands.Status(w.DataDirectory, json: true, 5, output));
        using var status = System.Text.Json.JsonDocument.Parse(output.ToString());
        var q = status.RootElement.GetProperty("queue");
        Assert.Equal(0, q.GetProperty("pending").GetInt64());
        Assert.Equal(1, q.GetProperty("dead_lettered").GetInt64());
        var dead = Assert.Single(q.GetProperty("dead_letters").EnumerateArray());
        Assert.Equal(queued, dead.GetProperty("sha256").GetString());
        Assert.Equal("boom", dead.GetProperty("reason").GetString());
    }

    [Fact]
    public void A_queued_capture_is_found_under_the_workers_own_data_folder()
    {
        using var w = QueueWorkspace();
        var source = w.Services.GetRequiredService<IngestQueueCaptureSource>();
        var sha = w.Store(AggregateTests.First(), "probe-b", "2024-05-02");
        // The C&C stored it under another mount point.
        var item = new CaptureEnqueued(sha, "probe-b", $"/srv/elsewhere/captures/probe-b/2024-05-02/{sha}.pcapng", 1,
            DateTimeOffset.Parse("2024-05-03T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), $"/srv/elsewhere/captures/probe-b/2024-05-02/{sha}.manifest.json");
        var pending = source.ToPending(item);
        Assert.Equal(w.CapturePath(sha, "probe-b", "2024-05-02"), pending.CapturePath);
        Assert.Equal(Path.ChangeExtension(pending.CapturePath, null) + ".manifest.json", pending.ManifestPath);
        Assert.Equal(new DateOnly(2024, 5, 2), pending.Date);
        Assert.StartsWith(Environment.MachineName + ":", source.Consumer, StringComparison.Ordinal);
    }

    /// <summary>
    /// Whoever can write to the queue (Redis without a password, say) forges an item naming a file outside the data
    /// directory. Parsed, it would later be deleted by the retention cleanup; it must instead be refused, untouched.
    /// </summary>
    [Theory]
    [InlineData("outside")]
    [InlineData("dot-dot")]
    [InlineData("probe-traversal")]
    [InlineData("same-shape-elsewhere")]
    public async Task A_forged_queue_item_naming_a_file_outside_the_store_is_refused_and_the_file_survives(string forgery)
    {
        using var w = new Workspace(
            new Dictionary<string, string?> { ["Aggregator:Source"] = "Queue", ["Aggregator:CaptureRetention"] = "1.00:00:00" },
            (services, configuration) => services.AddSurvey6AggregatorQueue(configuration));
        var content = AggregateTests.First();
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
        var victimDirectory = Path.Combine(w.Root, "victim", "captures", "probe-a", "2024-05-01");
        Directory.CreateDirectory(victimDirectory);
        var (probe, path, victim) = forgery switch
        {
            "outside" => ("probe-a", Path.Combine(victimDirectory, "precious.pcapng"), Path.Combine(victimDirectory, "precious.pcapng")),
            "dot-dot" => ("probe-a", Path.Combine(w.DataDirectory, "captures", "probe-a", "2024-05-01", "..", "..", "..", "..", "victim", "captures", "probe-a", "2024-05-01", sha + ".pcapng"),
                Path.Combine(victimDirectory, sha + ".pcapng")),
            "probe-traversal" => ("../../victim/captures/probe-a", Path.Combine(victimDirectory, sha + ".pcapng"), Path.Combine(victimDirectory, sha + ".pcapng")),
            // The shape of a capture stored under another mount point: accepted, but only DATA's own copy is read.
            _ => ("probe-a", Path.Combine(victimDirectory, sha + ".pcapng"), Path.Combine(victimDirectory, sha + ".pcapng")),
        };
        await File.WriteAllBytesAsync(victim, content);
        var queue = w.Services.GetRequiredService<IIngestQueue>();
        Assert.True(await queue.EnqueueAsync(new CaptureEnqueued(sha, probe, path, content.Length, w.Time.GetUtcNow(), null), CancellationToken.None));

        await w.RunAsync(AggregatorStage.Parse);
        w.Time.Now += TimeSpan.FromDays(3);
        await w.RunAsync(AggregatorStage.Cleanup);

        Assert.True(File.Exists(victim), "the file the forged item named was deleted");
        Assert.Equal(content, await File.ReadAllBytesAsync(victim));
        var state = w.Ledger.GetCapture(sha);
        Assert.NotNull(state);
        Assert.NotEqual(RunLedger.Parsed, state.Status);
        Assert.DoesNotContain(w.Root + Path.DirectorySeparatorChar + "victim", state.CapturePath, StringComparison.Ordinal);
        if (forgery == "same-shape-elsewhere")
        {
            // Read from DATA only, where there is no such capture: it fails there, and the named file is never opened.
            Assert.Equal(RunLedger.Failed, state.Status);
            Assert.Equal(w.CapturePath(sha), state.CapturePath);
        }
        else
        {
            Assert.Equal(RunLedger.Quarantined, state.Status);
            Assert.StartsWith("refused queue item:", state.Reason, StringComparison.Ordinal);
        }
        Assert.Equal(new IngestQueueStats(0, 0, 0, null), await StatsAsync(w));
    }
}

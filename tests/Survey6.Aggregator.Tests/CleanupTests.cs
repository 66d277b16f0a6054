using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;

namespace Survey6.Aggregator.Tests;

/// <summary>The cleanup stage on real files and the real ledger: retention of raw captures, old temp files.</summary>
public class CleanupTests
{
    [Fact]
    public async Task Raw_captures_go_after_the_retention_only_when_parsed_and_their_packets_file_exists()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:CaptureRetention"] = "7.00:00:00" });
        var old = w.Store(AggregateTests.First());
        var lost = w.Store(AggregateTests.Second());
        var bad = w.Store(System.Text.Encoding.ASCII.GetBytes("not a capture"));
        await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(RunLedger.Quarantined, w.Ledger.GetCapture(bad)!.Status);
        // The packets file of one parsed capture has gone: its raw capture is now the only copy.
        File.Delete(w.Ledger.GetCapture(lost)!.OutputPath!);

        w.Time.Now += TimeSpan.FromDays(6);
        var recent = w.Store(AggregateTests.Third(), probe: "probe-b");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.True(File.Exists(w.CapturePath(old))); // six days: kept

        w.Time.Now += TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.False(File.Exists(w.CapturePath(old)));
        Assert.False(File.Exists(Path.ChangeExtension(w.CapturePath(old), ".manifest.json")));
        Assert.True(File.Exists(w.Ledger.GetCapture(old)!.OutputPath)); // the lake keeps its rows
        Assert.True(File.Exists(w.CapturePath(lost)));
        Assert.True(File.Exists(w.CapturePath(bad)));
        Assert.True(File.Exists(w.CapturePath(recent, probe: "probe-b")));

        // A removed capture is not parsed again, and the lake still aggregates from its packets file.
        var report = await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(0, report.Inputs);
        await w.RunAsync(AggregatorStage.Aggregate);
        using var db = w.DuckDb();
        Assert.Equal(12L, Workspace.Scalar<long>(db, $"SELECT CAST(sum(frames) AS BIGINT) FROM read_parquet({Workspace.Q(Path.Combine(w.Lake.Dataset(LakeLayout.Summary), "*", "*.parquet"))}) WHERE probe_id = 'probe-a'"));

        w.Time.Now += TimeSpan.FromDays(6);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.False(File.Exists(w.CapturePath(recent, probe: "probe-b")));
        Assert.True(File.Exists(w.CapturePath(lost)));
    }

    [Fact]
    public async Task Without_a_retention_raw_captures_stay()
    {
        using var w = new Workspace();
        var sha = w.Store(AggregateTests.Third());
        await w.RunAsync(AggregatorStage.Parse);
        w.Time.Now += TimeSpan.FromDays(3650);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.True(File.Exists(w.CapturePath(sha)));
    }

    [Fact]
    public async Task Temp_files_and_staging_folders_go_once_older_than_the_threshold()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:TempFileMaxAge"] = "01:00:00" });
        w.Store(AggregateTests.Third());
        await w.RunAsync(AggregatorStage.Parse);
        var packets = Directory.EnumerateFiles(w.Lake.Dataset(LakeLayout.Packets), "*.parquet", SearchOption.AllDirectories).Single();
        var now = w.Time.Now.UtcDateTime;

        string Temp(string run, TimeSpan age)
        {
            var path = LakeLayout.TempPathFor(packets, run);
            File.WriteAllBytes(path, [1, 2, 3]);
            File.SetLastWriteTimeUtc(path, now - age);
            return path;
        }
        string Staged(string run, TimeSpan folderAge, TimeSpan fileAge)
        {
            var folder = Path.Combine(w.Lake.Staging, "aggregate-" + run, "date=2024-05-01", "flows");
            Directory.CreateDirectory(folder);
            var file = Path.Combine(folder, "data.parquet");
            File.WriteAllBytes(file, [1]);
            File.SetLastWriteTimeUtc(file, now - fileAge);
            foreach (var dir in new[] { folder, Path.GetDirectoryName(folder)!, Path.Combine(w.Lake.Staging, "aggregate-" + run) })
                Directory.SetLastWriteTimeUtc(dir, now - folderAge);
            return Path.Combine(w.Lake.Staging, "aggregate-" + run);
        }

        var oldTemp = Temp("old", TimeSpan.FromHours(2));
        var freshTemp = Temp("fresh", TimeSpan.FromMinutes(10));
        var oldStaged = Staged("old", TimeSpan.FromHours(3), TimeSpan.FromHours(3));
        var busyStaged = Staged("busy", TimeSpan.FromHours(3), TimeSpan.FromMinutes(1)); // an old folder with a file still being written
        var looseOld = Path.Combine(w.Lake.Staging, "loose.bin");
        File.WriteAllBytes(looseOld, [1]);
        File.SetLastWriteTimeUtc(looseOld, now - TimeSpan.FromDays(1));
        var visible = Path.Combine(Path.GetDirectoryName(packets)!, "old.parquet.tmp"); // not hidden: not ours to delete
        File.WriteAllBytes(visible, [1]);
        File.SetLastWriteTimeUtc(visible, now - TimeSpan.FromDays(1));

        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.False(File.Exists(oldTemp));
        Assert.True(File.Exists(freshTemp));
        Assert.False(Directory.Exists(oldStaged));
        Assert.True(Directory.Exists(busyStaged));
        Assert.False(File.Exists(looseOld));
        Assert.True(File.Exists(visible));
        Assert.True(File.Exists(packets));

        w.Time.Now += TimeSpan.FromHours(1);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.False(File.Exists(freshTemp));
        Assert.False(Directory.Exists(busyStaged));
    }

    [Fact]
    public void Bad_retention_and_key_settings_fail_at_start()
    {
        var validator = new AggregatorOptionsValidator();
        var result = validator.Validate(null, new AggregatorOptions { CaptureRetention = TimeSpan.Zero, TempFileMaxAge = TimeSpan.FromHours(-1) });
        Assert.True(result.Failed);
        Assert.Contains("CaptureRetention", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("TempFileMaxAge", result.FailureMessage, StringComparison.Ordinal);
        Assert.True(validator.Validate(null, new AggregatorOptions { CaptureRetention = TimeSpan.FromDays(30) }).Succeeded);
        var missingKey = validator.Validate(null, new AggregatorOptions { Anonymisation = { Enabled = true, KeyPath = "/nonexistent/survey6.key" } });
        Assert.Contains("Anonymisation:KeyPath '/nonexistent/survey6.key' does not exist", missingKey.FailureMessage, StringComparison.Ordinal);
    }
}

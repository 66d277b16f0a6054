using Microsoft.Data.Sqlite;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Sources;
using Survey6.Data;

namespace Survey6.Aggregator.Tests;

/// <summary>The C&amp;C's view of the ledger: read through <see cref="RunLedger"/> opened read-only, never creating or changing the file.</summary>
public sealed class LedgerPipelineViewTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("survey6-ledger-view-").FullName;

    private DataLayout Layout => new(_dir);

    [Fact]
    public void Without_a_ledger_there_is_no_view_and_no_file_is_made()
    {
        var source = new LedgerPipelineViewSource(Layout, TimeProvider.System);

        Assert.Null(source.Read());
        Assert.Null(RunLedger.OpenReadOnly(Layout.Ledger, TimeProvider.System));
        Assert.False(File.Exists(Layout.Ledger));
    }

    [Fact]
    public void An_empty_file_where_the_ledger_goes_is_not_a_ledger_yet_and_stays_untouched()
    {
        File.WriteAllBytes(Layout.Ledger, []);

        Assert.Null(new LedgerPipelineViewSource(Layout, TimeProvider.System).Read());
        Assert.Equal(0, new FileInfo(Layout.Ledger).Length);
    }

    [Fact]
    public void The_view_has_each_stage_newest_run_problem_captures_and_rows_summed_over_dates()
    {
        var ledger = new RunLedger(Layout.Ledger, TimeProvider.System);
        var first = ledger.StartRun("parse");
        ledger.FinishRun(first, "failed", 1, 0, 0, "disk full");
        var second = ledger.StartRun("parse");
        ledger.FinishRun(second, "succeeded", 2, 2, 30, null);
        ledger.RecordCapture(new PendingCapture("aa", "probe-a", new DateOnly(2025, 3, 14), "/a.pcapng", null), RunLedger.Parsed, 1, null, 10, null, null, second);
        ledger.RecordCapture(new PendingCapture("bb", "probe-b", new DateOnly(2025, 3, 14), "/b.pcapng", null), RunLedger.Quarantined, 5, "bad block length", null, null, null, second);
        ledger.SetPartition(new DateOnly(2025, 3, 14), "fp1", 1, """{"packets":10,"dns":2}""", second);
        ledger.SetPartition(new DateOnly(2025, 3, 15), "fp2", 1, """{"packets":5}""", second);
        var modified = File.GetLastWriteTimeUtc(Layout.Ledger);

        var view = new LedgerPipelineViewSource(Layout, TimeProvider.System).Read();

        Assert.NotNull(view);
        var parse = Assert.Single(view.Stages);
        Assert.Equal(second, parse.Last.RunId);
        Assert.Equal(1, parse.RunsByStatus["failed"]);
        Assert.Equal(1, parse.RunsByStatus["succeeded"]);
        Assert.Equal(new[] { second, first }, view.RecentRuns.Select(r => r.RunId));
        Assert.Equal(new Dictionary<string, long> { ["parsed"] = 1, ["quarantined"] = 1 }, view.CapturesByStatus);
        var problem = Assert.Single(view.Problems);
        Assert.Equal(("bb", "bad block length", 5), (problem.Sha256, problem.Reason, problem.Attempts));
        Assert.Equal(15, view.RowsPerTable["packets"]);
        Assert.Equal(2, view.RowsPerTable["dns"]);
        Assert.Equal(2, view.Partitions);
        Assert.Equal(modified, File.GetLastWriteTimeUtc(Layout.Ledger));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }
}

using Survey6.Data;
using Survey6.Data.Views;

namespace Survey6.Aggregator.Ledger;

/// <summary>
/// <see cref="IPipelineViewSource"/> over the run ledger (<c>DATA/aggregator.db</c> or <c>Aggregator:LedgerPath</c>:
/// <see cref="DataLayout.Ledger"/>), read only, through <see cref="RunLedger"/>, the one owner of its schema. The
/// aggregator may run in another process; this reads what it recorded. Registered for the C&amp;C's data page by
/// <see cref="AggregatorViewsServiceCollectionExtensions.AddSurvey6AggregatorViews"/>. With
/// <paramref name="ledgerConnectionString"/> (<c>Aggregator:Ledger:ConnectionString</c> in the server's configuration)
/// it reads the ledger in PostgreSQL instead, through <see cref="PostgresRunLedger"/>.
/// </summary>
public sealed class LedgerPipelineViewSource(DataLayout layout, TimeProvider time, string? ledgerConnectionString = null) : IPipelineViewSource
{
    public string LedgerPath => ledgerConnectionString is null ? layout.Ledger : PostgresRunLedger.Describe(PostgresRunLedger.Parse(ledgerConnectionString));

    public PipelineView? Read(int recentRuns = 20, int problems = 20)
    {
        IRunLedger? ledger;
        try
        {
            ledger = ledgerConnectionString is null ? RunLedger.OpenReadOnly(LedgerPath, time) : PostgresRunLedger.OpenExisting(ledgerConnectionString, time);
        }
        catch (LedgerUnavailableException)
        {
            // The database is down or refuses the server: the page is shown without the ledger, as while it is made.
            return null;
        }
        if (ledger is null)
            return null;

        var stages = ledger.Stages().Select(s => new PipelineStage(s.Stage, View(s.Last), s.RunsByStatus)).ToList();
        var runs = ledger.RecentRuns(recentRuns).Select(View).ToList();
        // Only the states some capture is in, as the page lists them.
        var captures = ledger.CaptureCounts().Where(c => c.Value > 0).ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
        var problemList = ledger.Problems(problems)
            .Select(c => new ProblemCapture(c.Sha256, c.ProbeId, c.Status, c.Attempts, c.Reason, c.UpdatedAt))
            .ToList();

        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var partitions = ledger.Partitions();
        foreach (var partition in partitions)
        {
            foreach (var (table, n) in partition.Rows())
                rows[table] = rows.GetValueOrDefault(table) + n;
        }

        return new PipelineView(stages, runs, captures, problemList, rows, partitions.Count);
    }

    private static PipelineRun View(RunRecord run) => new(
        run.RunId, run.Stage, run.StartedAt, run.DurationMs is { } ms ? TimeSpan.FromMilliseconds(ms) : null, run.Status,
        run.Inputs, run.Outputs, run.Rows, run.Error);
}

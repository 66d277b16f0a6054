namespace Survey6.Data.Views;

public sealed record PipelineRun(string RunId, string Stage, DateTimeOffset StartedAt, TimeSpan? Duration, string Status, long Inputs, long Outputs, long Rows, string? Error);

/// <summary>Per stage: its newest run and how many runs ended in each status.</summary>
public sealed record PipelineStage(string Stage, PipelineRun Last, IReadOnlyDictionary<string, long> RunsByStatus);

public sealed record ProblemCapture(string Sha256, string ProbeId, string Status, int Attempts, string? Reason, DateTimeOffset UpdatedAt);

/// <summary>What the aggregator's run ledger says, as the data page shows it.</summary>
public sealed record PipelineView(
    IReadOnlyList<PipelineStage> Stages,
    IReadOnlyList<PipelineRun> RecentRuns,
    IReadOnlyDictionary<string, long> CapturesByStatus,
    IReadOnlyList<ProblemCapture> Problems,
    IReadOnlyDictionary<string, long> RowsPerTable,
    int Partitions);

/// <summary>
/// Where the data page gets the aggregator's run ledger. The ledger's schema belongs to the aggregator, which
/// implements this over its own ledger code; the program that hosts the server registers it. The aggregator may run
/// in another process: the ledger file is its record, so the implementation reads the file rather than asking a service.
/// </summary>
public interface IPipelineViewSource
{
    /// <summary>The ledger read (<see cref="DataLayout.Ledger"/>).</summary>
    string LedgerPath { get; }

    /// <summary>The newest <paramref name="recentRuns"/> runs and <paramref name="problems"/> problem captures; null when there is no ledger yet.</summary>
    PipelineView? Read(int recentRuns = 20, int problems = 20);
}

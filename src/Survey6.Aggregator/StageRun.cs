using Survey6.Aggregator.Ledger;

namespace Survey6.Aggregator;

/// <summary>The stages of the aggregator.</summary>
public enum AggregatorStage
{
    Parse,
    Aggregate,
    Cleanup,
}

/// <summary>What one stage run did, as recorded in the ledger.</summary>
public sealed record StageReport(
    string RunId, AggregatorStage Stage, string Status, long Inputs, long Outputs, long Rows, TimeSpan Duration, string? Error)
{
    public bool Succeeded => Status == "succeeded";
}

/// <summary>Counts and file lists of a run in progress; files go straight to the ledger.</summary>
public sealed class StageRun(IRunLedger ledger, string runId, AggregatorStage stage)
{
    public string RunId { get; } = runId;

    public AggregatorStage Stage { get; } = stage;

    public long Inputs { get; private set; }

    public long Outputs { get; private set; }

    public long Rows { get; private set; }

    public void Input(string path, long? rows = null)
    {
        Inputs++;
        ledger.AddRunFile(RunId, "input", path, rows);
    }

    public void Output(string path, long? rows)
    {
        Outputs++;
        Rows += rows ?? 0;
        ledger.AddRunFile(RunId, "output", path, rows);
    }
}

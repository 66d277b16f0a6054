using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Cleanup;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Sources;
using Survey6.Packets.Files;

namespace Survey6.Aggregator;

/// <summary>Runs a stage under the stage lock and records the run in the ledger; what the CLI and the scheduler call.</summary>
public sealed class AggregatorRunner(
    ParseStage parse,
    AggregateStage aggregate,
    CleanupStage cleanup,
    IRunLedger ledger,
    ICaptureSource source,
    IStageLocks locks,
    IOptions<AggregatorOptions> options,
    ILogger<AggregatorRunner> logger)
{
    private readonly AggregatorOptions _options = WithLake(options.Value);

    /// <summary>The run id of a report for a run that was not needed (nothing queued).</summary>
    public const string NoRun = "none";

    /// <summary>What the stage lock is (a file, or advisory locks in the ledger's PostgreSQL), for log lines.</summary>
    public string LockPath => locks.Where;

    /// <summary>Runs one stage; null when another stage held the lock for longer than <paramref name="wait"/>.</summary>
    public Task<StageReport?> RunAsync(AggregatorStage stage, TimeSpan wait, CancellationToken ct) => RunAsync(stage, rebuild: null, wait, ct);

    /// <summary>Rebuilds one date's datasets from its packets (<c>aggregate rebuild --date D</c>); null when the lock was held.</summary>
    public Task<StageReport?> RebuildAsync(DateOnly date, TimeSpan wait, CancellationToken ct) => RunAsync(AggregatorStage.Aggregate, date, wait, ct);

    private async Task<StageReport?> RunAsync(AggregatorStage stage, DateOnly? rebuild, TimeSpan wait, CancellationToken ct)
    {
        var name = stage.ToString().ToLowerInvariant();
        // A queue-fed parse every few seconds would fill the ledger with empty runs; with nothing queued, do nothing.
        if (stage == AggregatorStage.Parse && !await source.HasWorkAsync(ct).ConfigureAwait(false))
            return new StageReport(NoRun, stage, "succeeded", 0, 0, 0, TimeSpan.Zero, null);
        // Parse runs fed by the queue share the lock (each capture is leased to one worker); everything else runs alone.
        var shared = stage == AggregatorStage.Parse && source.ConcurrentRuns;
        using var stageLock = await locks.TryAcquireAsync(shared, wait, ct).ConfigureAwait(false);
        if (stageLock is null)
        {
            Log.StageLocked(logger, name, LockPath);
            return null;
        }

        var runId = ledger.StartRun(name);
        var run = new StageRun(ledger, runId, stage);
        Log.StageStarted(logger, name, runId);
        var watch = Stopwatch.StartNew();
        string status = "succeeded";
        string? error = null;
        try
        {
            switch (stage)
            {
                case AggregatorStage.Parse:
                    await parse.RunAsync(run, ct).ConfigureAwait(false);
                    break;
                case AggregatorStage.Aggregate:
                    await aggregate.RunAsync(run, rebuild, ct).ConfigureAwait(false);
                    break;
                case AggregatorStage.Cleanup:
                    await cleanup.RunAsync(run, ct).ConfigureAwait(false);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(stage), stage, null);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            status = "failed";
            error = "cancelled";
            throw;
        }
        catch (Exception e)
        {
            status = "failed";
            error = e.GetType().Name + ": " + e.Message;
            Log.StageFailed(logger, e, name, runId);
        }
        finally
        {
            ledger.FinishRun(runId, status, run.Inputs, run.Outputs, run.Rows, error);
            Log.StageFinished(logger, name, runId, status, watch.ElapsedMilliseconds, run.Inputs, run.Outputs, run.Rows);
            if (run.Inputs > 0 && stage != AggregatorStage.Cleanup)
                ReleaseMemory();
        }
        return new StageReport(runId, stage, status, run.Inputs, run.Outputs, run.Rows, watch.Elapsed, error);
    }

    /// <summary>
    /// Gives a finished stage's memory back to the system. The parse's row-group buffers are garbage once it ends, but
    /// the runtime keeps the pages it grew into; the aggregate stage that follows in the same process (<c>aggregate
    /// once</c>, the scheduler, the server's embedded aggregator) would then add DuckDB's pool on top of them, and the
    /// process would near or pass Aggregator:MemoryLimit although neither stage does alone (ten 200 k-packet captures:
    /// 0.93 GiB in one process against 0.44 and 0.68 GiB apart; 0.77 GiB with this). One blocking, compacting collection
    /// per stage run that did something costs milliseconds.
    /// </summary>
    private static void ReleaseMemory() =>
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

    /// <summary>
    /// Makes the lake's folder, owner-only like the data directory it usually sits in (it holds captured packets),
    /// before any stage writes below it with the process's umask.
    /// </summary>
    private static AggregatorOptions WithLake(AggregatorOptions options)
    {
        SecureFiles.CreateOwnerOnlyDirectory(options.Layout.Lake);
        return options;
    }

    /// <summary>cleanup (leftovers, due retries), parse, then aggregate, so that one call brings the lake up to date.</summary>
    public async Task<IReadOnlyList<StageReport?>> RunAllAsync(TimeSpan wait, CancellationToken ct)
    {
        var reports = new List<StageReport?>();
        foreach (var stage in new[] { AggregatorStage.Cleanup, AggregatorStage.Parse, AggregatorStage.Aggregate })
            reports.Add(await RunAsync(stage, wait, ct).ConfigureAwait(false));
        return reports;
    }
}

using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Cleanup;

/// <summary>
/// Stage <c>cleanup</c>: removes what crashed runs left (hidden temp files, staging folders, runs still marked
/// running) and retries failed captures whose back-off has run out; a capture failing its last allowed attempt is
/// quarantined. It runs under the stage lock, so no other stage can be writing what it removes.
/// </summary>
public sealed class CleanupStage(ParseStage parse, RunLedger ledger, IOptions<AggregatorOptions> options, TimeProvider time, ILogger<CleanupStage> logger)
{
    /// <summary>How long runs that did nothing stay in the ledger.</summary>
    public static readonly TimeSpan IdleRunRetention = TimeSpan.FromDays(7);

    private readonly AggregatorOptions _options = options.Value;

    public async Task RunAsync(StageRun run, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var lake = new LakeLayout(_options.ResolvedLakeDirectory);
        var (files, folders) = RemoveLeftovers(lake);
        int abandoned = ledger.AbandonRunningRuns(run.RunId);
        ledger.PruneIdleRuns(time.GetUtcNow() - IdleRunRetention);
        Log.CleanupRemoved(logger, files, folders, abandoned);

        foreach (var capture in ledger.DueRetries(time.GetUtcNow()))
        {
            ct.ThrowIfCancellationRequested();
            await parse.ProcessAsync(lake, capture.ToPending(), capture.Attempts + 1, run, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Deletes hidden <c>.*.tmp</c> files anywhere in the lake and everything under <c>LAKE/.staging</c>.</summary>
    public static (int Files, int Folders) RemoveLeftovers(LakeLayout lake)
    {
        ArgumentNullException.ThrowIfNull(lake);
        int files = 0, folders = 0;
        if (!Directory.Exists(lake.Root))
            return (0, 0);
        foreach (var file in Directory.EnumerateFiles(lake.Root, "*" + LakeLayout.TempSuffix, SearchOption.AllDirectories))
        {
            if (LakeLayout.IsTempName(Path.GetFileName(file)) && !file.StartsWith(lake.Staging, StringComparison.Ordinal))
            {
                File.Delete(file);
                files++;
            }
        }
        if (Directory.Exists(lake.Staging))
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(lake.Staging))
            {
                if (Directory.Exists(entry))
                {
                    Directory.Delete(entry, recursive: true);
                    folders++;
                }
                else
                {
                    File.Delete(entry);
                    files++;
                }
            }
        }
        return (files, folders);
    }
}

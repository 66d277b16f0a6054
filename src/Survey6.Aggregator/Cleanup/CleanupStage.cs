using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Cleanup;

/// <summary>
/// Stage <c>cleanup</c>: removes what crashed runs left (hidden temp files and staging folders older than
/// <c>TempFileMaxAge</c>, runs still marked running), retries failed captures whose back-off has run out (a capture
/// failing its last allowed attempt is quarantined), and applies the retention of raw captures. It runs under the
/// stage lock, so no other stage of this data folder can be writing what it removes; the age threshold also spares
/// work in progress of a process that does not share the lock.
/// </summary>
/// <remarks>
/// Small packets files are not compacted: each is named by its capture's SHA-256, which is what makes parsing
/// idempotent, lets the ledger point at one capture's rows and lets retention check them. The aggregate outputs are
/// already one file per dataset and date.
/// </remarks>
public sealed class CleanupStage(ParseStage parse, IRunLedger ledger, IOptions<AggregatorOptions> options, TimeProvider time, ILogger<CleanupStage> logger)
{
    /// <summary>How long runs that did nothing stay in the ledger.</summary>
    public static readonly TimeSpan IdleRunRetention = TimeSpan.FromDays(7);

    private readonly AggregatorOptions _options = options.Value;

    public async Task RunAsync(StageRun run, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var lake = new LakeLayout(_options.Layout.Lake);
        var now = time.GetUtcNow();
        var (files, folders) = RemoveLeftovers(lake, now - _options.TempFileMaxAge);
        int abandoned = ledger.AbandonRunningRuns(run.RunId);
        RemoveOutdatedFragments(lake, ct);
        ledger.PruneIdleRuns(now - IdleRunRetention);
        Log.CleanupRemoved(logger, files, folders, abandoned);

        try
        {
            foreach (var capture in ledger.DueRetries(now))
            {
                ct.ThrowIfCancellationRequested();
                await parse.ProcessAsync(lake, capture.ToPending(), capture.Attempts + 1, run, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            parse.ReleaseBuffers();
        }

        if (_options.CaptureRetention is { } retention)
            ApplyRetention(now - retention, ct);
    }

    /// <summary>
    /// Deletes raw captures (and their manifests) parsed at or before <paramref name="parsedBefore"/> whose packets
    /// file is in the lake. A capture whose packets file is missing is kept: it is the only copy of its packets.
    /// </summary>
    public int ApplyRetention(DateTimeOffset parsedBefore, CancellationToken ct)
    {
        int removed = 0;
        foreach (var capture in ledger.ParsedBefore(parsedBefore))
        {
            ct.ThrowIfCancellationRequested();
            var raw = new FileInfo(capture.CapturePath);
            if (!raw.Exists)
                continue; // removed earlier
            if (capture.OutputPath is not { } packets || !File.Exists(packets))
            {
                Log.CaptureKept(logger, capture.Sha256, capture.ProbeId, "its packets file is missing");
                continue;
            }
            long bytes = raw.Length;
            raw.Delete();
            if (capture.ManifestPath is { } manifest)
                File.Delete(manifest);
            removed++;
            Log.CaptureRemoved(logger, capture.Sha256, capture.ProbeId, bytes, packets);
        }
        return removed;
    }

    /// <summary>
    /// Deletes hidden <c>.*.tmp</c> files anywhere in the lake and the entries of <c>LAKE/.staging</c>, when nothing in
    /// them was written after <paramref name="olderThan"/>.
    /// </summary>
    public static (int Files, int Folders) RemoveLeftovers(LakeLayout lake, DateTimeOffset olderThan)
    {
        ArgumentNullException.ThrowIfNull(lake);
        int files = 0, folders = 0;
        if (!Directory.Exists(lake.Root))
            return (0, 0);
        foreach (var file in Directory.EnumerateFiles(lake.Root, "*" + LakeLayout.TempSuffix, SearchOption.AllDirectories))
        {
            if (LakeLayout.IsTempName(Path.GetFileName(file)) && !file.StartsWith(lake.Staging, StringComparison.Ordinal)
                && File.GetLastWriteTimeUtc(file) <= olderThan.UtcDateTime)
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
                    if (NewestWrite(new DirectoryInfo(entry)) > olderThan.UtcDateTime)
                        continue;
                    Directory.Delete(entry, recursive: true);
                    folders++;
                }
                else if (File.GetLastWriteTimeUtc(entry) <= olderThan.UtcDateTime)
                {
                    File.Delete(entry);
                    files++;
                }
            }
        }
        return (files, folders);
    }

    /// <summary>
    /// Deletes the parse stage's connection fragment files that no reader of this version uses: not named for the current
    /// connection settings, and of an older fragment format by their footer (after an upgrade changed the format, the
    /// aggregate stage tracks those captures again from their stored copies). A file of another settings value in the
    /// current format stays, as the settings may be changed back; so does one that cannot be read, for the operator
    /// (the aggregate stage names it).
    /// </summary>
    private void RemoveOutdatedFragments(LakeLayout lake, CancellationToken ct)
    {
        if (!Directory.Exists(lake.ParsedConnections))
            return;
        var current = "." + ConnectionPartials.SettingsHash(_options.Connections) + ".parquet";
        int files = 0;
        long bytes = 0;
        DuckDBConnection? db = null;
        try
        {
            foreach (var file in Directory.EnumerateFiles(lake.ParsedConnections, "*.parquet", SearchOption.AllDirectories))
            {
                ct.ThrowIfCancellationRequested();
                if (file.EndsWith(current, StringComparison.Ordinal) || LakeLayout.IsTempName(Path.GetFileName(file)))
                    continue;
                if (db is null)
                {
                    db = new DuckDBConnection("DataSource=:memory:");
                    db.Open();
                }

                string? format;
                try
                {
                    format = ConnectionFragmentFile.FormatOf(db, file);
                }
                catch (DuckDBException)
                {
                    continue;
                }

                if (!ConnectionFragmentFile.IsOlderFormat(format))
                    continue;
                var length = new FileInfo(file).Length;
                File.Delete(file);
                files++;
                bytes += length;
            }
        }
        finally
        {
            db?.Dispose();
        }

        if (files > 0)
            Log.CleanupRemovedOutdatedFragments(logger, files, bytes);
    }

    private static DateTime NewestWrite(DirectoryInfo folder)
    {
        var newest = folder.LastWriteTimeUtc;
        foreach (var entry in folder.EnumerateFileSystemInfos("*", SearchOption.AllDirectories))
        {
            if (entry.LastWriteTimeUtc > newest)
                newest = entry.LastWriteTimeUtc;
        }
        return newest;
    }
}

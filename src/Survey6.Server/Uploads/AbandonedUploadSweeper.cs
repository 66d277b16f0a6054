using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Server.Diagnostics;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// Deletes partial uploads left alone for <see cref="CaptureStoreOptions.AbandonedUploadAge"/> every
/// <see cref="CaptureStoreOptions.AbandonedUploadSweepInterval"/> while the server runs, not only at start: a probe
/// that begins uploads and never finishes them cannot keep them on disk for as long as the server stays up.
/// </summary>
internal sealed class AbandonedUploadSweeper(
    CaptureStore store,
    IOptions<CaptureStoreOptions> options,
    ServerCounters counters,
    TimeProvider time,
    ILogger<AbandonedUploadSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.AbandonedUploadSweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    var report = await store.ExpireAbandonedAsync(stoppingToken).ConfigureAwait(false);
                    counters.Increment(UploadCounterNames.AbandonedSweeps);
                    counters.Add(UploadCounterNames.AbandonedDeleted, report.Abandoned);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A disk hiccup: the next sweep tries again; start-up recovery is the backstop.
                    UploadLog.SweepFailed(logger, e, store.DataDirectory);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

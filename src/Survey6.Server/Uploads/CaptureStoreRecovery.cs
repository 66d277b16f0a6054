using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// Runs <see cref="CaptureStore.RecoverAsync"/> in the host's Starting phase, which completes before any hosted
/// service starts, the web server included: no upload is accepted until captures a crash left unqueued are queued
/// and its leftovers are gone. A failure (the queue unreachable) stops the start.
/// </summary>
internal sealed class CaptureStoreRecovery(CaptureStore store, ILogger<CaptureStoreRecovery> logger) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var report = await store.RecoverAsync(cancellationToken).ConfigureAwait(false);
        UploadLog.Recovered(logger, store.DataDirectory, report.Requeued, report.AbandonedUploads, report.RemovedLeftovers);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

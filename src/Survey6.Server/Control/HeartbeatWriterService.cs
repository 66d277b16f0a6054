using Microsoft.Extensions.Hosting;

namespace Survey6.Server.Control;

/// <summary>
/// Runs the <see cref="HeartbeatWriter"/> for the host's lifetime. Stopping
/// stores every heartbeat queued so far before the host goes on: a heartbeat acknowledged before
/// a graceful stop is in state.db after it.
/// </summary>
internal sealed class HeartbeatWriterService(HeartbeatWriter writer) : IHostedService
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);
    private Task _writer = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _writer = writer.StartWriter();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        writer.CompleteWriting();
        // Not bounded by the host's token: the remaining batch is a few milliseconds of work and the
        // whole point of stopping gracefully. A database that hangs still cannot hold the process forever.
        await _writer.WaitAsync(DrainTimeout, CancellationToken.None).ConfigureAwait(false);
    }
}

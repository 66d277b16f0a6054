using Microsoft.Extensions.Hosting;

namespace Survey6.Aggregator.Scheduling;

/// <summary>
/// One scheduler per job store: Quartz's non-clustered SQLite store assumes it is alone, and two daemons on one file
/// would fire and recover each other's triggers. An exclusive flock on <c>STORE.lock</c>, held while the host runs,
/// turns that mistake into a clear start-up error.
/// </summary>
public sealed class SchedulerStoreGuard(string storePath) : IHostedService, IDisposable
{
    private FileStream? _lock;

    public string LockPath { get; } = storePath + ".lock";

    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            _lock = new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException(
                $"Another aggregator daemon uses the scheduler store {storePath} (its lock {LockPath} is held). " +
                "Workers sharing a data folder need distinct names: --worker-name or Aggregator:WorkerName.", e);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _lock?.Dispose();
}

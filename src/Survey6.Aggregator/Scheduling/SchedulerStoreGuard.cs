using Microsoft.Extensions.Hosting;
using Survey6.Packets.Files;

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
        // Usually the data directory: if missing, it is made owner-only, as the C&C would; the store is created
        // owner-only before Quartz opens it.
        SecureFiles.CreateOwnerOnlyDirectory(Path.GetDirectoryName(Path.GetFullPath(storePath))!);
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = SecureFiles.OwnerOnlyFile;
            _lock = new FileStream(LockPath, options);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException(
                $"Another aggregator daemon uses the scheduler store {storePath} (its lock {LockPath} is held). " +
                "Workers sharing a data folder need distinct names: --worker-name or Aggregator:WorkerName.", e);
        }
        SecureFiles.CreateOwnerOnlyFile(storePath);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _lock?.Dispose();
}

using Microsoft.Extensions.Options;
using Survey6.Packets.Files;

namespace Survey6.Aggregator;

/// <summary>
/// The lock that serialises stages across processes and hosts: exclusive holders (aggregate, cleanup, a
/// directory-scan parse) run alone, shared holders (parse runs fed by the queue) side by side, and a waiting
/// exclusive holder is not starved by a stream of shared ones. An flock on <c>DATA/aggregator.lock</c> with the
/// embedded ledger (<see cref="FileStageLocks"/>); PostgreSQL advisory locks with the PostgreSQL ledger
/// (<see cref="Ledger.PostgresStageLocks"/>).
/// </summary>
public interface IStageLocks
{
    /// <summary>What is locked, for log lines: a file, or the ledger's database.</summary>
    string Where { get; }

    /// <summary>The lock, held until disposed; null when it was not free within <paramref name="wait"/>.</summary>
    Task<IDisposable?> TryAcquireAsync(bool shared, TimeSpan wait, CancellationToken ct);
}

/// <summary><see cref="StageLock"/> on the data folder's <c>aggregator.lock</c>: processes sharing one file system.</summary>
public sealed class FileStageLocks(IOptions<AggregatorOptions> options) : IStageLocks
{
    public string Where { get; } = options.Value.Layout.StageLock;

    public async Task<IDisposable?> TryAcquireAsync(bool shared, TimeSpan wait, CancellationToken ct) =>
        await StageLock.TryAcquireAsync(Where, shared, wait, ct).ConfigureAwait(false);
}

/// <summary>
/// Stages over one data folder, across processes (the daemon, workers, a one-off CLI run): an advisory lock on
/// <c>DATA/aggregator.lock</c>. .NET takes flock(LOCK_EX) for FileShare.None and flock(LOCK_SH) for a read-only
/// open that shares, and the kernel drops both when the process dies, so a crash never leaves the lock behind.
/// Exclusive holders (aggregate, cleanup, a directory-scan parse) run alone; shared holders (parse runs fed by the
/// queue, which hands each capture to one worker) run side by side. A second file, <c>aggregator.lock.gate</c>, keeps
/// a stream of overlapping shared holders from starving an exclusive one: a waiting exclusive holder takes the gate
/// first, and shared holders pass through the gate before they take the lock.
/// </summary>
public sealed class StageLock : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);
    private readonly FileStream _stream;

    private StageLock(FileStream stream) => _stream = stream;

    /// <summary>The exclusive lock; null when it was not free within <paramref name="wait"/>.</summary>
    public static Task<StageLock?> TryAcquireAsync(string path, TimeSpan wait, CancellationToken ct) =>
        TryAcquireAsync(path, shared: false, wait, ct);

    public static async Task<StageLock?> TryAcquireAsync(string path, bool shared, TimeSpan wait, CancellationToken ct)
    {
        path = Path.GetFullPath(path);
        SecureFiles.CreateOwnerOnlyDirectory(Path.GetDirectoryName(path)!);
        var deadline = DateTime.UtcNow + wait;
        var gatePath = path + ".gate";
        if (!shared)
        {
            // Hold the gate while waiting: no new shared holder gets in, the current ones finish their runs.
            using var gate = await TryOpenAsync(gatePath, shared: false, deadline, ct).ConfigureAwait(false);
            if (gate is null)
                return null;
            var stream = await TryOpenAsync(path, shared: false, deadline, ct).ConfigureAwait(false);
            return stream is null ? null : new StageLock(stream);
        }

        using (var gate = await TryOpenAsync(gatePath, shared: true, deadline, ct).ConfigureAwait(false))
        {
            if (gate is null)
                return null;
            var stream = await TryOpenAsync(path, shared: true, deadline, ct).ConfigureAwait(false);
            return stream is null ? null : new StageLock(stream);
        }
    }

    private static async Task<FileStream?> TryOpenAsync(string path, bool shared, DateTime deadline, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                var options = new FileStreamOptions
                {
                    Mode = FileMode.OpenOrCreate,
                    Access = shared ? FileAccess.Read : FileAccess.ReadWrite,
                    Share = shared ? FileShare.ReadWrite : FileShare.None,
                };
                if (!OperatingSystem.IsWindows())
                    options.UnixCreateMode = SecureFiles.OwnerOnlyFile;
                return new FileStream(path, options);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(Poll, ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}

using Survey6.Packets.Files;

namespace Survey6.Aggregator;

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

namespace Survey6.Aggregator;

/// <summary>
/// One stage at a time over a data folder, across processes (the daemon and a one-off CLI run): an exclusive
/// lock on <c>DATA/aggregator.lock</c>. .NET takes an advisory flock for FileShare.None on Unix, released when
/// the process dies, so a crash never leaves the lock behind.
/// </summary>
public sealed class StageLock : IDisposable
{
    private readonly FileStream _stream;

    private StageLock(FileStream stream) => _stream = stream;

    public static async Task<StageLock?> TryAcquireAsync(string path, TimeSpan wait, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                return new StageLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}

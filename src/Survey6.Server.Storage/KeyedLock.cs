namespace Survey6.Server.Storage;

/// <summary>One async mutex per key, created on demand and dropped when nobody holds or waits for it.</summary>
internal sealed class KeyedLock
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>Waits up to <paramref name="timeout"/> (infinite when null); null when the time ran out.</summary>
    public async ValueTask<IDisposable?> TryAcquireAsync(string key, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (_entries)
        {
            if (!_entries.TryGetValue(key, out entry!))
            {
                entry = new Entry();
                _entries.Add(key, entry);
            }
            entry.References++;
        }

        bool acquired = false;
        try
        {
            acquired = await entry.Semaphore.WaitAsync(timeout ?? Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (!acquired)
                Drop(key, entry);
        }
        return acquired ? new Lease(this, key, entry) : null;
    }

    /// <summary>How many hold or wait for <paramref name="key"/>: what a test waits on to know a second caller is queued.</summary>
    public int Contenders(string key)
    {
        lock (_entries)
            return _entries.TryGetValue(key, out var entry) ? entry.References : 0;
    }

    public async ValueTask<IDisposable> AcquireAsync(string key, CancellationToken cancellationToken) =>
        (await TryAcquireAsync(key, null, cancellationToken).ConfigureAwait(false))!;

    private void Drop(string key, Entry entry)
    {
        lock (_entries)
        {
            if (--entry.References == 0)
            {
                _entries.Remove(key);
                entry.Dispose();
            }
        }
    }

    private sealed class Entry : IDisposable
    {
        public readonly SemaphoreSlim Semaphore = new(1, 1);
        public int References;

        public void Dispose() => Semaphore.Dispose();
    }

    private sealed class Lease(KeyedLock owner, string key, Entry entry) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
                return;
            entry.Semaphore.Release();
            owner.Drop(key, entry);
        }
    }
}

namespace Survey6.Server.Enrollment;

/// <summary>
/// A sliding-window count of attempts per key (a source address, a probe id): at most a permit of attempts within a
/// window. Idle keys are swept once the table grows past a threshold, so callers cannot grow it without bound. Time
/// comes from <see cref="TimeProvider"/> so tests can move it.
/// </summary>
internal sealed class SlidingWindowLimiter(TimeProvider time)
{
    private const int SweepThreshold = 10_000;
    private readonly Dictionary<string, Source> _sources = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>
    /// Counts an attempt for <paramref name="key"/>; false when the key has used up its window.
    /// <paramref name="firstRefusal"/> is true for one refusal per key and window, so a flood is recorded as one
    /// event, not thousands of database writes.
    /// </summary>
    public bool TryAcquire(string key, int permitLimit, TimeSpan window, out bool firstRefusal)
    {
        firstRefusal = false;
        var now = time.GetTimestamp();
        var ticks = (long)(window.TotalSeconds * time.TimestampFrequency);
        lock (_lock)
        {
            if (_sources.Count > SweepThreshold)
                Sweep(now, ticks);
            if (!_sources.TryGetValue(key, out var source))
                _sources[key] = source = new Source();
            var attempts = source.Attempts;
            while (attempts.Count > 0 && now - attempts.Peek() >= ticks)
                attempts.Dequeue();
            if (attempts.Count >= permitLimit)
            {
                firstRefusal = source.ReportedRefusalAt is not { } reported || now - reported >= ticks;
                if (firstRefusal)
                    source.ReportedRefusalAt = now;
                return false;
            }

            attempts.Enqueue(now);
            return true;
        }
    }

    // Drops keys idle for a whole window.
    private void Sweep(long now, long window)
    {
        foreach (var (key, source) in _sources.ToList())
        {
            if (source.Attempts.Count == 0 || now - source.Attempts.Last() >= window)
                _sources.Remove(key);
        }
    }

    private sealed class Source
    {
        public Queue<long> Attempts { get; } = new();

        public long? ReportedRefusalAt { get; set; }
    }
}

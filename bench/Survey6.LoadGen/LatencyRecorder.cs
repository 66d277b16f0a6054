using System.Diagnostics;

namespace Survey6.LoadGen;

/// <summary>Every latency sample, kept exactly (a run has at most a few hundred thousand); percentiles by sorting.</summary>
internal sealed class LatencyRecorder
{
    private readonly Lock _lock = new();
    private readonly List<long> _ticks = new(1 << 16);

    public int Count
    {
        get
        {
            lock (_lock)
                return _ticks.Count;
        }
    }

    public void Record(long stopwatchTicks)
    {
        lock (_lock)
            _ticks.Add(stopwatchTicks);
    }

    /// <summary>p50, p99, p99.9 and max in milliseconds (nearest rank); zeros when empty.</summary>
    public (double P50, double P99, double P999, double Max) Summary()
    {
        long[] sorted;
        lock (_lock)
            sorted = [.. _ticks];
        if (sorted.Length == 0)
            return (0, 0, 0, 0);
        Array.Sort(sorted);
        double At(double q) => Milliseconds(sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)]);
        return (At(0.50), At(0.99), At(0.999), Milliseconds(sorted[^1]));
    }

    private static double Milliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

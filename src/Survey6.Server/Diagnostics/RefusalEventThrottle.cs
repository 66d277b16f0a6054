using System.Collections.Concurrent;

namespace Survey6.Server.Diagnostics;

/// <summary>
/// Lets one refusal event per source and reason through per interval, so a client hammering the
/// server with bad calls costs it a counter increment each, not a database write each.
/// </summary>
public sealed class RefusalEventThrottle(TimeProvider time)
{
    private const int MaxTracked = 10_000;
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, long> _lastRecorded = new(StringComparer.Ordinal);

    public bool ShouldRecord(string source, string reason)
    {
        var now = time.GetTimestamp();
        if (_lastRecorded.Count > MaxTracked)
            _lastRecorded.Clear(); // crude but bounded: at worst some duplicate events
        var key = source + "\n" + reason;
        var recorded = false;
        _lastRecorded.AddOrUpdate(
            key,
            _ =>
            {
                recorded = true;
                return now;
            },
            (_, last) =>
            {
                recorded = time.GetElapsedTime(last, now) >= Interval;
                return recorded ? now : last;
            });
        return recorded;
    }
}

namespace Survey6.Contracts.Diagnostics;

/// <summary>
/// A failure that repeats (a probe's capture that cannot start or uploads a full server refuses; a server's uploads that fail on its side) is logged once per condition,
/// not once per attempt: the first occurrence, then a reminder with the count every <see cref="Reminder"/> while the
/// condition lasts, and the count when it changes or clears. The condition is a key chosen by the caller (the reason
/// without file names), so a new kind of failure is logged at once.
/// </summary>
public sealed class RecurringFailure(TimeProvider time, TimeSpan reminder)
{
    private readonly Lock _gate = new();
    private string? _condition;
    private long _unlogged;
    private long _total;
    private DateTimeOffset _since;
    private DateTimeOffset _loggedAt;

    /// <summary>How often a lasting condition is logged again, with its count.</summary>
    public static readonly TimeSpan DefaultReminder = TimeSpan.FromMinutes(10);

    public TimeSpan Reminder { get; } = reminder;

    /// <summary>
    /// Counts one failure of <paramref name="condition"/>; says whether to log it now and with what counts:
    /// <see cref="Occurrence.Total"/> failures since <see cref="Occurrence.Since"/>, <see cref="Occurrence.Unlogged"/>
    /// of them not logged (0 for the first).
    /// </summary>
    public Occurrence Report(string condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var now = time.GetUtcNow();
        lock (_gate)
        {
            if (!string.Equals(condition, _condition, StringComparison.Ordinal))
            {
                _condition = condition;
                _since = now;
                _total = 1;
                _unlogged = 0;
                _loggedAt = now;
                return new Occurrence(true, 1, 0, now);
            }

            _total++;
            if (now - _loggedAt < Reminder)
            {
                _unlogged++;
                return new Occurrence(false, _total, _unlogged, _since);
            }

            var unlogged = _unlogged;
            _unlogged = 0;
            _loggedAt = now;
            return new Occurrence(true, _total, unlogged, _since);
        }
    }

    /// <summary>The condition is over: how many failures it had (0 when there was none).</summary>
    public long Clear()
    {
        lock (_gate)
        {
            var total = _condition is null ? 0 : _total;
            _condition = null;
            _total = 0;
            _unlogged = 0;
            return total;
        }
    }

    /// <param name="Log">Log this one.</param>
    /// <param name="Total">Failures of this condition so far, this one included.</param>
    /// <param name="Unlogged">Failures since the last line that were not logged.</param>
    /// <param name="Since">When the condition began.</param>
    public readonly record struct Occurrence(bool Log, long Total, long Unlogged, DateTimeOffset Since);
}

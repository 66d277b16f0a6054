namespace Survey6.Probe.Uplink;

/// <summary>What <see cref="IdleWindow.Decide"/> allows.</summary>
public enum UploadGate
{
    /// <summary>The link is busy (or not yet quiet long enough): do not start a file.</summary>
    Wait,

    /// <summary>The link has been quiet for the quiet period, or no idle threshold is set.</summary>
    Go,

    /// <summary>Still busy, but files have waited the maximum deferral: upload anyway, at the rate cap.</summary>
    Forced,
}

/// <summary>
/// Decides whether the uploader may start a file, from samples of the capture interfaces' traffic. The upload's
/// own bytes are taken off each sample, or an upload would keep the link "busy" and stop itself. Pure: fed
/// samples, reads only its clock, so tests drive it with a fake one.
/// </summary>
public sealed class IdleWindow
{
    private long _idleBytesPerSecond;
    private readonly TimeSpan _quietPeriod;
    private readonly TimeSpan _maxDeferral;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long? _quietSince;
    private long? _waitingSince;
    private long _lastOthersBytesPerSecond;

    /// <param name="idleBytesPerSecond">Below this the link is idle; 0 disables the gate.</param>
    /// <param name="quietPeriod">How long it must stay idle.</param>
    /// <param name="maxDeferral">How long files may be held back by a busy link.</param>
    /// <param name="time">The clock.</param>
    public IdleWindow(long idleBytesPerSecond, TimeSpan quietPeriod, TimeSpan maxDeferral, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(idleBytesPerSecond);
        ArgumentOutOfRangeException.ThrowIfLessThan(quietPeriod, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDeferral, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(time);
        _idleBytesPerSecond = idleBytesPerSecond;
        _quietPeriod = quietPeriod;
        _maxDeferral = maxDeferral;
        _time = time;
    }

    /// <summary>Traffic of others (the sample minus the upload's own bytes) in the last sample.</summary>
    /// <summary>The threshold; a policy may change it (0 disables the gate).</summary>
    public long IdleBytesPerSecond
    {
        get
        {
            lock (_lock)
                return _idleBytesPerSecond;
        }

        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            lock (_lock)
                _idleBytesPerSecond = value;
        }
    }

    public long LastOthersBytesPerSecond
    {
        get
        {
            lock (_lock)
                return _lastOthersBytesPerSecond;
        }
    }

    /// <summary>One sample: the interfaces' total bytes per second, and how many of them the uploader sent itself.</summary>
    public void Record(long totalBytesPerSecond, long ownBytesPerSecond)
    {
        var others = Math.Max(0, totalBytesPerSecond - Math.Max(0, ownBytesPerSecond));
        lock (_lock)
        {
            _lastOthersBytesPerSecond = others;
            if (others >= _idleBytesPerSecond)
                _quietSince = null;
            else
                _quietSince ??= _time.GetTimestamp();
        }
    }

    /// <summary>The counters could not be read: nothing is known, so the quiet streak starts over.</summary>
    public void RecordUnknown()
    {
        lock (_lock)
            _quietSince = null;
    }

    /// <summary>Whether a file may start now; <paramref name="pending"/> says whether files are waiting (the deferral runs while they do).</summary>
    public UploadGate Decide(bool pending)
    {
        lock (_lock)
        {
            if (!pending)
            {
                _waitingSince = null;
                return UploadGate.Wait;
            }

            var now = _time.GetTimestamp();
            _waitingSince ??= now;
            if (_idleBytesPerSecond == 0)
                return UploadGate.Go;
            if (_quietSince is { } quiet && _time.GetElapsedTime(quiet, now) >= _quietPeriod)
                return UploadGate.Go;
            return _time.GetElapsedTime(_waitingSince.Value, now) >= _maxDeferral ? UploadGate.Forced : UploadGate.Wait;
        }
    }
}

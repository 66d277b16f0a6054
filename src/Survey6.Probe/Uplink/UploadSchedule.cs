namespace Survey6.Probe.Uplink;

/// <summary>A daily upload window in UTC, as offsets from midnight; it may wrap past midnight (22:00-06:00).</summary>
public sealed record UploadWindow(TimeSpan Start, TimeSpan End)
{
    public bool Contains(DateTimeOffset time)
    {
        if (Start == End)
            return true;
        var t = time.UtcDateTime.TimeOfDay;
        return Start < End ? t >= Start && t < End : t >= Start || t < End;
    }

    public override string ToString() => $"{Start:hh\\:mm}-{End:hh\\:mm} UTC";
}

/// <summary>
/// The server's upload settings in force (set by the policy controller, read by the uploader): the daily window and
/// the idle threshold as a fraction of link speed. Unset, the uploader follows <c>Probe:Upload</c> alone.
/// </summary>
public sealed class UploadSchedule
{
    private volatile Settings _settings = new(null, null);

    /// <summary>Null: any time of day.</summary>
    public UploadWindow? Window => _settings.Window;

    /// <summary>Null: <c>Probe:Upload:IdleBytesPerSecond</c>; 0: do not wait for an idle link; otherwise a fraction (0..1] of link speed.</summary>
    public double? IdleUtilisation => _settings.IdleUtilisation;

    public void Set(UploadWindow? window, double? idleUtilisation) => _settings = new Settings(window, idleUtilisation);

    /// <summary>Whether a file may start now; outside the window only an explicit UPLOAD_NOW or the maximum deferral send.</summary>
    public bool InWindow(DateTimeOffset now) => _settings.Window?.Contains(now) ?? true;

    /// <summary>The idle threshold in bytes/s: the utilisation times <paramref name="linkBytesPerSecond"/> when both are known, else <paramref name="configured"/>.</summary>
    public long IdleBytesPerSecond(long configured, long linkBytesPerSecond) => _settings.IdleUtilisation switch
    {
        null => configured,
        <= 0 => 0,
        { } u when linkBytesPerSecond > 0 => Math.Max(1, (long)(u * linkBytesPerSecond)),
        _ => configured,
    };

    private sealed record Settings(UploadWindow? Window, double? IdleUtilisation);
}

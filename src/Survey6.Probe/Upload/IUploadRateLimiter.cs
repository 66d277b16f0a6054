namespace Survey6.Probe.Upload;

/// <summary>
/// Paces upload bytes. <see cref="CaptureUploader"/> asks before sending each chunk; the probe daemon supplies one
/// shared by all uploads (from the policy's byte rate and the link's idle capacity).
/// </summary>
public interface IUploadRateLimiter
{
    /// <summary>Returns once <paramref name="bytes"/> may be sent. A cancelled wait may still count against the rate.</summary>
    ValueTask WaitAsync(int bytes, CancellationToken cancellationToken);
}

/// <summary>
/// A token bucket: <see cref="BytesPerSecond"/> on average, bursts up to <see cref="BurstBytes"/>. A request larger
/// than the bucket waits for the tokens it lacks rather than forever, so chunks of any size pass. Thread-safe;
/// callers are served in arrival order because each reserves its tokens before it waits.
/// </summary>
public sealed class TokenBucketRateLimiter : IUploadRateLimiter
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private long _bytesPerSecond;
    private double _tokens;
    private long _refilledAt;

    /// <param name="bytesPerSecond">Average rate; 0 for no limit.</param>
    /// <param name="burstBytes">Bucket size; 0 for one second's worth.</param>
    /// <param name="timeProvider">Clock and timers; the system's by default.</param>
    public TokenBucketRateLimiter(long bytesPerSecond, long burstBytes = 0, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerSecond);
        ArgumentOutOfRangeException.ThrowIfNegative(burstBytes);
        _time = timeProvider ?? TimeProvider.System;
        _bytesPerSecond = bytesPerSecond;
        BurstBytes = burstBytes;
        _tokens = EffectiveBurst;
        _refilledAt = _time.GetTimestamp();
    }

    public long BytesPerSecond
    {
        get
        {
            lock (_lock)
                return _bytesPerSecond;
        }
    }

    public long BurstBytes { get; }

    private double EffectiveBurst => BurstBytes > 0 ? BurstBytes : Math.Max(_bytesPerSecond, 1);

    /// <summary>Changes the rate, e.g. when a new policy arrives; waits already reserved keep their delay.</summary>
    public void SetRate(long bytesPerSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerSecond);
        lock (_lock)
        {
            Refill();
            _bytesPerSecond = bytesPerSecond;
            _tokens = Math.Min(_tokens, EffectiveBurst);
        }
    }

    public ValueTask WaitAsync(int bytes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        TimeSpan delay;
        lock (_lock)
        {
            if (_bytesPerSecond == 0)
                return ValueTask.CompletedTask;
            Refill();
            _tokens -= bytes;
            if (_tokens >= 0)
                return ValueTask.CompletedTask;
            delay = TimeSpan.FromSeconds(-_tokens / _bytesPerSecond);
        }

        return new ValueTask(Task.Delay(delay, _time, cancellationToken));
    }

    // Runs under _lock.
    private void Refill()
    {
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(_refilledAt, now);
        _refilledAt = now;
        _tokens = Math.Min(EffectiveBurst, _tokens + elapsed.TotalSeconds * _bytesPerSecond);
    }
}

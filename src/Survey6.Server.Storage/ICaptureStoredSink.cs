namespace Survey6.Server.Storage;

/// <summary>
/// Receives every capture once it is durable, before the upload is acknowledged: the ingest queue. A call may repeat
/// for the same capture (a retried upload of a capture whose call failed, or <see cref="CaptureStore.RecoverAsync"/>
/// after a crash), so implementations must be idempotent by <see cref="StoredCapture.Sha256"/>.
/// </summary>
public interface ICaptureStoredSink
{
    /// <summary>Takes responsibility for the capture; returns only once that is itself durable. Throwing withholds the acknowledgement.</summary>
    ValueTask OnStoredAsync(StoredCapture capture, CancellationToken cancellationToken);
}

/// <summary>Adapters for <see cref="ICaptureStoredSink"/>.</summary>
public static class CaptureStoredSink
{
    /// <summary>A sink that calls <paramref name="onStored"/>.</summary>
    public static ICaptureStoredSink FromDelegate(Func<StoredCapture, CancellationToken, ValueTask> onStored)
    {
        ArgumentNullException.ThrowIfNull(onStored);
        return new DelegateSink(onStored);
    }

    private sealed class DelegateSink(Func<StoredCapture, CancellationToken, ValueTask> onStored) : ICaptureStoredSink
    {
        public ValueTask OnStoredAsync(StoredCapture capture, CancellationToken cancellationToken) => onStored(capture, cancellationToken);
    }
}

using System.Buffers;
using System.Threading.Channels;

namespace Survey6.Probe.Capture;

/// <summary>
/// The bounded hand-over from capture threads to the spool writer. A frame is copied into pooled
/// memory and offered without waiting: when the queue is full (by count or by bytes) the frame is
/// dropped and counted, because blocking would only move the loss into the kernel where it is
/// counted less precisely. Control signals (run start and stop, rotation) wait for room instead, so
/// they are never lost and stay in order with the frames.
/// </summary>
public sealed class CaptureQueue
{
    private readonly Channel<QueueItem> _channel;
    private readonly ArrayPool<byte> _pool;
    private readonly long _maxBytes;
    private long _queuedBytes;

    public CaptureQueue(int capacity, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        _maxBytes = maxBytes;
        _channel = Channel.CreateBounded<QueueItem>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = false,
        });
        // Its own pool, sized for whole frames: the shared pool keeps few arrays per size and the
        // capture and writer threads would mostly miss it.
        _pool = ArrayPool<byte>.Create(CaptureOptions.FullSnapLength, Math.Min(capacity, 1024));
    }

    /// <summary>Bytes of frames waiting for the writer.</summary>
    public long QueuedBytes => Volatile.Read(ref _queuedBytes);

    /// <summary>Frames waiting for the writer.</summary>
    public int Count => _channel.Reader.CanCount ? _channel.Reader.Count : 0;

    internal ChannelReader<QueueItem> Reader => _channel.Reader;

    /// <summary>The capture callback's whole job: count, copy, offer; a full queue is a counted drop.</summary>
    public bool TryEnqueue(ProbeInterface source, long timestampNanoseconds, ReadOnlySpan<byte> data, uint originalLength)
    {
        var counters = source.Counters;
        Interlocked.Increment(ref counters.CapturedField);
        Interlocked.Add(ref counters.CapturedBytesField, originalLength);
        var length = data.Length;
        if (Interlocked.Add(ref _queuedBytes, length) > _maxBytes)
        {
            Interlocked.Add(ref _queuedBytes, -length);
            Interlocked.Increment(ref counters.QueueDroppedField);
            return false;
        }

        var buffer = _pool.Rent(Math.Max(length, 1));
        data.CopyTo(buffer);
        if (_channel.Writer.TryWrite(new QueueItem(source, buffer, length, originalLength, timestampNanoseconds)))
            return true;

        _pool.Return(buffer);
        Interlocked.Add(ref _queuedBytes, -length);
        Interlocked.Increment(ref counters.QueueDroppedField);
        return false;
    }

    /// <summary>Queues a control signal behind the frames already queued; waits for room.</summary>
    internal ValueTask SignalAsync(QueueSignal signal, CancellationToken cancellationToken) =>
        _channel.Writer.WriteAsync(new QueueItem(signal), cancellationToken);

    /// <summary>Gives a frame's buffer back once it is written (or discarded).</summary>
    internal void Release(in QueueItem item)
    {
        if (item.Buffer is { } buffer)
        {
            _pool.Return(buffer);
            Interlocked.Add(ref _queuedBytes, -item.Length);
        }
    }

    /// <summary>No more items: the writer finishes what is queued and stops.</summary>
    public void Complete() => _channel.Writer.TryComplete();
}

/// <summary>A frame (Buffer set) or a control signal (Signal set).</summary>
internal readonly struct QueueItem
{
    public QueueItem(ProbeInterface source, byte[] buffer, int length, uint originalLength, long timestampNanoseconds)
    {
        Source = source;
        Buffer = buffer;
        Length = length;
        OriginalLength = originalLength;
        TimestampNanoseconds = timestampNanoseconds;
        Signal = null;
    }

    public QueueItem(QueueSignal signal)
    {
        Source = null;
        Buffer = null;
        Length = 0;
        OriginalLength = 0;
        TimestampNanoseconds = 0;
        Signal = signal;
    }

    public ProbeInterface? Source { get; }

    public byte[]? Buffer { get; }

    public int Length { get; }

    public uint OriginalLength { get; }

    public long TimestampNanoseconds { get; }

    public QueueSignal? Signal { get; }
}

/// <summary>Why a spool file was closed; written to its manifest.</summary>
public enum CloseReason
{
    Size,
    Age,
    Stop,
    Suspend,
    Requested,
    DiskGuard,
    Error,
    Repaired,
    Unknown,

    /// <summary>A new policy changed what is captured: the next file starts with the new SHB and IDBs.</summary>
    Policy,
}

/// <summary>Control messages that travel through the queue in order with the frames.</summary>
internal abstract class QueueSignal
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the writer has acted on the signal.</summary>
    public Task Done => _done.Task;

    public void Complete() => _done.TrySetResult();

    public void Fail(Exception e) => _done.TrySetException(e);
}

/// <summary>Frames of this run follow.</summary>
internal sealed class RunStartedSignal(CaptureRun run) : QueueSignal
{
    public CaptureRun Run { get; } = run;
}

/// <summary>No frame of this run follows: close its file with its final counters.</summary>
internal sealed class RunStoppedSignal(CaptureRun run, CloseReason reason) : QueueSignal
{
    public CaptureRun Run { get; } = run;

    public CloseReason Reason { get; } = reason;
}

/// <summary>Close the current file now (if any) so that what it holds can be uploaded.</summary>
internal sealed class RotateSignal : QueueSignal
{
}

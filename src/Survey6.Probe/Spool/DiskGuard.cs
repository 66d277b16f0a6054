using Microsoft.Extensions.Logging;
using Survey6.Probe.Diagnostics;

namespace Survey6.Probe.Spool;

/// <summary>State of the disk guard.</summary>
public enum DiskGuardState
{
    /// <summary>Frames are written.</summary>
    Ok,

    /// <summary>pause-capture tripped: frames are counted as disk drops until there is room for a whole file.</summary>
    Paused,

    /// <summary>evict-oldest found nothing left to evict: frames are counted as disk drops, retried every guard interval.</summary>
    Full,
}

/// <summary>What the guard says about the next block.</summary>
internal enum DiskGuardVerdict
{
    /// <summary>Write it.</summary>
    Write,

    /// <summary>Drop it (counted as a disk drop).</summary>
    Drop,

    /// <summary>pause-capture just tripped: close the open file (the reserve leaves room for that), then drop.</summary>
    CloseAndDrop,
}

/// <summary>
/// The spool's disk guard (the "disk guard" of docs/architecture.md): keeps the spool within
/// <see cref="SpoolOptions.MaxSpoolBytes"/> and its file system above <see cref="SpoolOptions.MinFreeDiskBytes"/>,
/// by evicting the oldest closed files or pausing, per <see cref="SpoolOptions.DiskPolicy"/>. It runs on the
/// spool writer's thread only; <see cref="State"/> is read by status from any thread.
/// </summary>
/// <remarks>
/// Free space is measured at most once per guard interval (a statfs per frame would cost more than the write);
/// between measures the guard subtracts what was written since, so it never overestimates the room left.
/// </remarks>
internal sealed class DiskGuard
{
    private readonly SpoolDirectory _spool;
    private readonly SpoolOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _intervalTicks;
    private readonly Func<long> _totalDiskDrops;

    private long _freeAtMeasure = long.MaxValue;
    private long _writtenSinceMeasure;
    private volatile DiskGuardState _state;
    private long _blockedUntil;
    private long _dropsAtTrip;

    /// <param name="totalDiskDrops">Disk drops of the current run so far, to log how many a pause or a full spool cost.</param>
    public DiskGuard(SpoolDirectory spool, SpoolOptions options, TimeProvider time, ILogger logger, Func<long> totalDiskDrops)
    {
        _spool = spool;
        _options = options;
        _time = time;
        _logger = logger;
        _totalDiskDrops = totalDiskDrops;
        _intervalTicks = (long)(options.GuardInterval.TotalSeconds * time.TimestampFrequency);
    }

    public DiskGuardState State => _state;

    /// <summary>The guard interval in <see cref="TimeProvider"/> ticks.</summary>
    public long IntervalTicks => _intervalTicks;

    /// <summary>Bytes handed to the file system since the last measure.</summary>
    public void Written(long bytes) => _writtenSinceMeasure += bytes;

    /// <summary>
    /// Whether a block of <paramref name="block"/> bytes may be written beside an open file of
    /// <paramref name="openFileBytes"/>. Under pressure it first flushes the open file
    /// (<paramref name="flushOpenFile"/>) so that the free space it measures counts what is buffered.
    /// </summary>
    public DiskGuardVerdict Check(long block, long openFileBytes, Action flushOpenFile)
    {
        switch (_state)
        {
            case DiskGuardState.Paused:
                return DiskGuardVerdict.Drop;
            case DiskGuardState.Full when _time.GetTimestamp() < _blockedUntil:
                return DiskGuardVerdict.Drop;
        }

        if (WithinLimits(block, openFileBytes))
        {
            if (_state == DiskGuardState.Full)
                Resume();
            return DiskGuardVerdict.Write;
        }

        return UnderPressure(block, openFileBytes, flushOpenFile);
    }

    /// <summary>
    /// The periodic check: measures free space and lifts a pause or a full spool once there is room again.
    /// Without it a full guard would only be lifted by the next frame: on a quiet link the probe would go on
    /// reporting "spool full" (and the server "degraded") long after the disk was freed.
    /// </summary>
    public void Tick(long rotateSizeBytes, long openFileBytes)
    {
        Measure();
        if (_state == DiskGuardState.Paused && RoomForAWholeFile(rotateSizeBytes))
            Resume();
        else if (_state == DiskGuardState.Full && WithinLimits(0, openFileBytes))
            Resume();
    }

    /// <summary>Measures the spool's free space; a failed measure keeps the previous one until the next try.</summary>
    public void Measure()
    {
        try
        {
            _freeAtMeasure = _spool.FreeDiskBytes();
            _writtenSinceMeasure = 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
        }
    }

    private bool WithinLimits(long block, long openFileBytes)
    {
        var reserve = SpoolOptions.CloseReserveBytes + block;
        return _spool.ClosedBytes + openFileBytes + reserve <= _options.MaxSpoolBytes
            && _freeAtMeasure - _writtenSinceMeasure - reserve >= _options.MinFreeDiskBytes;
    }

    private DiskGuardVerdict UnderPressure(long block, long openFileBytes, Action flushOpenFile)
    {
        flushOpenFile();
        Measure();
        if (WithinLimits(block, openFileBytes))
            return DiskGuardVerdict.Write;

        if (_options.DiskPolicy == DiskPolicy.EvictOldest)
        {
            while (!WithinLimits(block, openFileBytes) && _spool.EvictOldest() is { } evicted)
            {
                Measure();
                ProbeLog.FileEvicted(_logger, SpoolOptions.PolicyName(_options.DiskPolicy), evicted.Name, evicted.TotalBytes, evicted.Frames, _spool.ClosedBytes, _freeAtMeasure);
            }

            if (WithinLimits(block, openFileBytes))
                return DiskGuardVerdict.Write;
            if (_state != DiskGuardState.Full)
            {
                ProbeLog.DiskFull(_logger, _spool.ClosedBytes + openFileBytes, _freeAtMeasure);
                _dropsAtTrip = _totalDiskDrops();
            }

            _state = DiskGuardState.Full;
            _blockedUntil = _time.GetTimestamp() + _intervalTicks;
            return DiskGuardVerdict.Drop;
        }

        ProbeLog.DiskPaused(_logger, _spool.ClosedBytes + openFileBytes, _options.MaxSpoolBytes, _freeAtMeasure, _options.MinFreeDiskBytes);
        _dropsAtTrip = _totalDiskDrops();
        _state = DiskGuardState.Paused;
        return DiskGuardVerdict.CloseAndDrop;
    }

    private bool RoomForAWholeFile(long rotateSizeBytes)
    {
        var needed = rotateSizeBytes + SpoolOptions.CloseReserveBytes;
        return _spool.ClosedBytes + needed <= _options.MaxSpoolBytes
            && _freeAtMeasure - needed >= _options.MinFreeDiskBytes;
    }

    private void Resume()
    {
        _state = DiskGuardState.Ok;
        var dropped = _totalDiskDrops() - _dropsAtTrip;
        ProbeLog.DiskResumed(_logger, dropped);
    }
}

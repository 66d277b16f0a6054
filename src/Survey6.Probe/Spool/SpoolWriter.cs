using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Packets.Capture;
using Survey6.Probe.Capture;
using Survey6.Probe.Diagnostics;

namespace Survey6.Probe.Spool;

/// <summary>The file being written, as status shows it.</summary>
public sealed record OpenSpoolFileInfo(string Name, long Bytes, long Frames, DateTimeOffset OpenedAt);

/// <summary>
/// The single consumer of the <see cref="CaptureQueue"/>: writes frames into pcapng spool files
/// (one SHB with the probe's metadata, one IDB per interface of the run, EPBs), rotates them by size
/// and age, closes each with one ISB per interface holding the counters of its window, and asks the
/// <see cref="DiskGuard"/> before each frame. A file is written as <c>NAME.pcapng.partial</c>, its header fsynced at once; at close
/// the ISBs are appended, the file fsynced, renamed and described by its manifest
/// (<see cref="SpoolDirectory.Publish"/>).
/// </summary>
/// <remarks>
/// Windows: the counters of a file cover the time from the previous file's close in the same run
/// (or the run's start) to its own close; frames still queued at a close are in the next file, so
/// per file the frame count and the pcap counters may differ by what was in flight, and over a run
/// they add up.
/// </remarks>
public sealed class SpoolWriter
{
    private const int BatchSize = 4096;

    // EPB without options: header (28), data padded to 4, trailer (4).
    private const int EpbOverhead = 32;

    private readonly CaptureQueue _queue;
    private readonly SpoolDirectory _spool;
    private readonly SpoolOptions _options;
    private readonly ProbeIdentity _identity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // Changed by a new policy while the writer runs (SetRotation).
    private long _rotateAgeTicks;
    private long _rotateSizeBytes;
    private readonly DiskGuard _guard;
    // Cached so that the per-frame guard check allocates no delegate.
    private readonly Action _flushOpenFile;

    private CaptureRun? _run;
    private OpenFile? _file;
    private CounterSnapshot[] _baseline = [];
    private long _windowStartNanoseconds;
    private long _nextTick;

    private volatile OpenSpoolFileInfo? _current;
    private long _filesClosed;
    // Closed files on their way to the spool (fsync, manifest), in order; see Close.
    private Task _publishing = Task.CompletedTask;

    public SpoolWriter(CaptureQueue queue, SpoolDirectory spool, IOptions<SpoolOptions> options, ProbeIdentity identity, TimeProvider time, ILogger<SpoolWriter> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _queue = queue;
        _spool = spool;
        _options = options.Value;
        _identity = identity;
        _time = time;
        _logger = logger;
        _rotateAgeTicks = (long)(_options.RotateAge.TotalSeconds * time.TimestampFrequency);
        _rotateSizeBytes = _options.RotateSizeBytes;
        _guard = new DiskGuard(spool, _options, time, logger, () => _run?.Totals().DiskDropped ?? 0);
        _flushOpenFile = FlushIfDirty;
    }

    public long RotateSizeBytes => Volatile.Read(ref _rotateSizeBytes);

    public TimeSpan RotateAge => TimeSpan.FromSeconds((double)Volatile.Read(ref _rotateAgeTicks) / _time.TimestampFrequency);

    /// <summary>
    /// Changes when files are closed (a policy update); the open file is judged by the new limits.
    /// Refused when the spool could not hold two files of the new size, as the options validator requires.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit outside what <see cref="SpoolOptionsValidator"/> accepts.</exception>
    public void SetRotation(long sizeBytes, TimeSpan age)
    {
        if (CheckRotation(sizeBytes, age) is { } problem)
            throw new ArgumentOutOfRangeException(nameof(sizeBytes), sizeBytes, problem);
        Volatile.Write(ref _rotateSizeBytes, sizeBytes);
        Volatile.Write(ref _rotateAgeTicks, (long)(age.TotalSeconds * _time.TimestampFrequency));
    }

    /// <summary>Why <see cref="SetRotation"/> would refuse these limits, or null if it would take them.</summary>
    public string? CheckRotation(long sizeBytes, TimeSpan age)
    {
        if (sizeBytes is < 16L << 10 or > 4L << 30)
            return $"rotate size {sizeBytes} bytes is outside 16 KiB..4 GiB";
        if (age < TimeSpan.FromSeconds(1) || age > TimeSpan.FromDays(1))
            return $"rotate age {age} is outside 1 s..1 day";
        if (_options.MaxSpoolBytes < 2 * sizeBytes + 2 * SpoolOptions.CloseReserveBytes)
            return $"Probe:Spool:MaxSpoolBytes ({_options.MaxSpoolBytes}) cannot hold two files of {sizeBytes} bytes";
        return null;
    }

    public DiskGuardState GuardState => _guard.State;

    /// <summary>The open file, or null between files.</summary>
    public OpenSpoolFileInfo? CurrentFile => _current;

    /// <summary>Files this writer closed since the process started.</summary>
    public long FilesClosed => Interlocked.Read(ref _filesClosed);

    /// <summary>Test hook: awaited before each batch is drained, so a test can hold the writer and fill the queue.</summary>
    internal Func<CancellationToken, Task>? DrainGate { get; set; }

    /// <summary>
    /// Drains the queue until it is completed (<see cref="CaptureQueue.Complete"/>), then closes what is open.
    /// Cancelling aborts the wait but still closes the open file cleanly.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var reader = _queue.Reader;
        Task<bool>? waiting = null;
        Task? tick = null;
        _guard.Measure();
        _nextTick = _time.GetTimestamp() + _guard.IntervalTicks;
        try
        {
            while (true)
            {
                if (DrainGate is { } gate)
                    await gate(cancellationToken).ConfigureAwait(false);
                var handled = 0;
                while (handled < BatchSize && reader.TryRead(out var item))
                {
                    Handle(item);
                    handled++;
                }

                if (_time.GetTimestamp() >= _nextTick)
                    Tick();
                if (handled == BatchSize)
                    continue;

                FlushIfDirty();
                waiting ??= reader.WaitToReadAsync(cancellationToken).AsTask();
                if (!waiting.IsCompleted)
                {
                    tick ??= Task.Delay(TimeSpan.FromSeconds(Math.Max(0, _nextTick - _time.GetTimestamp()) / (double)_time.TimestampFrequency), _time, cancellationToken);
                    if (await Task.WhenAny(waiting, tick).ConfigureAwait(false) == tick)
                    {
                        await tick.ConfigureAwait(false); // surfaces cancellation
                        tick = null;
                        continue;
                    }
                }

                if (!await waiting.ConfigureAwait(false))
                    break;
                waiting = null;
            }
        }
        finally
        {
            // Queue completed or the process is going down: what is open is closed as at a stop.
            Close(CloseReason.Stop);
        }
    }

    private void Handle(in QueueItem item)
    {
        if (item.Signal is { } signal)
            HandleSignal(signal);
        else
            WriteFrame(item);
    }

    private void HandleSignal(QueueSignal signal)
    {
        try
        {
            switch (signal)
            {
                case RunStartedSignal started:
                    Close(CloseReason.Stop);
                    _run = started.Run;
                    // A run's counters start at zero when it starts, not when this signal is read:
                    // frames dropped before the writer got here belong to the first window too.
                    _baseline = new CounterSnapshot[started.Run.Interfaces.Count];
                    _windowStartNanoseconds = ProbeIdentity.UnixNanoseconds(started.Run.StartedAt);
                    break;
                case RunStoppedSignal stopped when ReferenceEquals(stopped.Run, _run):
                    // Counters that grew while no file was open (every frame dropped) still get a file.
                    if (_file is null && CountersMoved())
                        TryOpen();
                    Close(stopped.Reason);
                    _run = null;
                    break;
                case RotateSignal:
                    Close(CloseReason.Requested);
                    break;
            }
        }
        finally
        {
            signal.Complete();
        }
    }

    private void WriteFrame(in QueueItem item)
    {
        var source = item.Source!;
        try
        {
            var run = _run;
            if (run is null || source.Index >= run.Interfaces.Count || !ReferenceEquals(run.Interfaces[source.Index], source))
            {
                // Cannot happen (signals keep runs and frames in order); counted rather than lost silently.
                Interlocked.Increment(ref source.Counters.DiskDroppedField);
                return;
            }

            var block = EpbOverhead + PcapngFormat.Pad(item.Length);
            if (_file is { Frames: > 0 } open)
            {
                if (open.Writer.BytesWritten + block > Volatile.Read(ref _rotateSizeBytes))
                    Close(CloseReason.Size);
                else if (_time.GetTimestamp() - open.OpenedTimestamp >= Volatile.Read(ref _rotateAgeTicks))
                    Close(CloseReason.Age);
            }

            var verdict = _guard.Check(block, _file?.Writer.BytesWritten ?? 0, _flushOpenFile);
            if (verdict == DiskGuardVerdict.CloseAndDrop)
                Close(CloseReason.DiskGuard); // what is written stays a complete, uploadable file
            if (verdict != DiskGuardVerdict.Write || (_file is null && !TryOpen()))
            {
                Interlocked.Increment(ref source.Counters.DiskDroppedField);
                return;
            }

            var file = _file!;
            file.Writer.WritePacket(source.Index, item.TimestampNanoseconds, item.Buffer.AsSpan(0, item.Length), item.OriginalLength);
            file.Frames++;
            file.Dirty = true;
            _guard.Written(block);
            Interlocked.Increment(ref source.Counters.WrittenField);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Interlocked.Increment(ref source.Counters.DiskDroppedField);
            Abandon(e);
        }
        finally
        {
            _queue.Release(item);
        }
    }

    private bool TryOpen()
    {
        var run = _run!;
        var opened = _time.GetUtcNow();
        var (partial, sequence) = _spool.NextFile(opened);
        FileStream? stream = null;
        try
        {
            stream = new FileStream(partial, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.Read,
                BufferSize = 0, // the pcapng writer buffers; a second buffer would only copy
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead,
            });
            var writer = new PcapngWriter(stream, _identity.Section(run.StartedAt), leaveOpen: true);
            foreach (var i in run.Interfaces)
            {
                writer.AddInterface(new PcapngInterfaceInfo(i.LinkType, (uint)i.SnapLength)
                {
                    Name = i.Name,
                    Description = i.Description,
                    Filter = i.Filter,
                });
            }

            // The header is made durable first: a file cut short by a crash always keeps its interfaces.
            writer.Flush();
            stream.Flush(flushToDisk: true);
            _guard.Written(writer.BytesWritten);
            _file = new OpenFile(partial, sequence, opened, _time.GetTimestamp(), stream, writer);
            _current = new OpenSpoolFileInfo(Path.GetFileName(partial), writer.BytesWritten, 0, opened);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stream?.Dispose();
            ProbeLog.WriteFailed(_logger, Path.GetFileName(partial), e.Message);
            TryRecover(partial);
            return false;
        }
    }

    /// <summary>Ends the current file: one ISB per interface with the window's counters, fsync, rename, manifest.</summary>
    private void Close(CloseReason reason)
    {
        var file = _file;
        if (file is null)
        {
            // A rotation just before (size or age) may still be publishing the last file in the background; a stop or
            // suspend must not report the spool settled before that file is in it.
            if (reason is not (CloseReason.Size or CloseReason.Age))
                _publishing.GetAwaiter().GetResult();
            return;
        }
        _file = null;
        _current = null;
        var run = _run!;
        try
        {
            run.RefreshStatistics();
            var now = NowNanoseconds();
            var next = new CounterSnapshot[run.Interfaces.Count];
            foreach (var i in run.Interfaces)
            {
                var current = i.Counters.Snapshot();
                var window = current - _baseline[i.Index];
                file.Writer.WriteInterfaceStatistics(i.Index, now, new PcapngInterfaceStatistics
                {
                    StartTimeNanoseconds = _windowStartNanoseconds,
                    EndTimeNanoseconds = now,
                    InterfaceReceived = (ulong)window.PcapReceived,
                    InterfaceDropped = (ulong)window.InterfaceDropped,
                    OsDropped = (ulong)window.KernelDropped,
                    UserDelivered = (ulong)window.Written,
                    Comment = PcapngMetadata.FormatDrops(window.QueueDropped, window.DiskDropped),
                });
                next[i.Index] = current;
            }

            file.Writer.Dispose();
            _baseline = next;
            _windowStartNanoseconds = now;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ProbeLog.WriteFailed(_logger, Path.GetFileName(file.PartialPath), e.Message);
            Release(file);
            TryRecover(file.PartialPath);
            ResetBaseline(run);
            _guard.Measure();
            return;
        }

        // fsync, hashing the whole file for its manifest and syncing the directory can take a second
        // or more on a busy disk; a rotation in the middle of traffic hands them to one background
        // task (files are still published in order) so the queue keeps draining meanwhile. Every
        // other close (stop, suspend, request, disk guard) waits, so its file is published when the
        // signal completes.
        var previous = _publishing;
        _publishing = previous.ContinueWith(_ => Publish(file, reason), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        if (reason is not (CloseReason.Size or CloseReason.Age))
            _publishing.GetAwaiter().GetResult();
        _guard.Measure();
    }

    private void Publish(OpenFile file, CloseReason reason)
    {
        try
        {
            file.Stream.Flush(flushToDisk: true);
            file.Stream.Dispose();
            _spool.Publish(file.PartialPath, file.Sequence, reason);
            Interlocked.Increment(ref _filesClosed);
        }
        catch (Exception e)
        {
            // Any failure, not only I/O: this runs detached, and a fault must neither vanish nor surface
            // at some later, unrelated close. The window's counters already moved on; the frames stay in
            // the file that recovery publishes (or in .partial for the next start to repair).
            ProbeLog.WriteFailed(_logger, Path.GetFileName(file.PartialPath), e.Message);
            Release(file);
            TryRecover(file.PartialPath);
        }
    }

    /// <summary>Writing failed (disk full despite the guard, I/O error): keep what is intact, move on.</summary>
    private void Abandon(Exception e)
    {
        var file = _file;
        if (file is null)
            return;
        _file = null;
        _current = null;
        ProbeLog.WriteFailed(_logger, Path.GetFileName(file.PartialPath), e.Message);
        Release(file);
        TryRecover(file.PartialPath);
        ResetBaseline(_run);
        _guard.Measure();
    }

    private void TryRecover(string partial)
    {
        try
        {
            if (File.Exists(partial))
                _spool.RecoverPartial(partial);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left as .partial: start-up recovery repairs it.
        }
    }

    // The counters of a window whose file could not be closed are lost to files (heartbeats still have them).
    private void ResetBaseline(CaptureRun? run)
    {
        if (run is null)
            return;
        _baseline = [.. run.Interfaces.Select(i => i.Counters.Snapshot())];
        _windowStartNanoseconds = NowNanoseconds();
    }

    private static void Release(OpenFile file)
    {
        try
        {
            file.Writer.Dispose();
        }
        catch (IOException)
        {
        }

        try
        {
            file.Stream.Dispose();
        }
        catch (IOException)
        {
        }
    }

    private void Tick()
    {
        var now = _time.GetTimestamp();
        _nextTick = now + _guard.IntervalTicks;
        if (_file is { } open && now - open.OpenedTimestamp >= Volatile.Read(ref _rotateAgeTicks))
            Close(CloseReason.Age);
        FlushIfDirty();
        _guard.Tick(Volatile.Read(ref _rotateSizeBytes), _file?.Writer.BytesWritten ?? 0);
    }

    private void FlushIfDirty()
    {
        if (_file is not { Dirty: true } file)
            return;
        try
        {
            // To the OS, not to the disk: a killed process loses nothing written so far.
            file.Writer.Flush();
            file.Dirty = false;
            _current = new OpenSpoolFileInfo(Path.GetFileName(file.PartialPath), file.Writer.BytesWritten, file.Frames, file.OpenedAt);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Abandon(e);
        }
    }

    private bool CountersMoved()
    {
        var run = _run;
        if (run is null)
            return false;
        run.RefreshStatistics();
        return run.Interfaces.Any(i => !(i.Counters.Snapshot() - _baseline[i.Index]).IsZero);
    }

    private long NowNanoseconds() => ProbeIdentity.UnixNanoseconds(_time.GetUtcNow());

    private sealed class OpenFile(string partialPath, long sequence, DateTimeOffset openedAt, long openedTimestamp, FileStream stream, PcapngWriter writer)
    {
        public string PartialPath { get; } = partialPath;

        public long Sequence { get; } = sequence;

        public DateTimeOffset OpenedAt { get; } = openedAt;

        public long OpenedTimestamp { get; } = openedTimestamp;

        public FileStream Stream { get; } = stream;

        public PcapngWriter Writer { get; } = writer;

        public long Frames { get; set; }

        public bool Dirty { get; set; }
    }
}

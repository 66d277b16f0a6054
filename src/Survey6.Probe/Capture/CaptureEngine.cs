using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SharpPcap;
using SharpPcap.LibPcap;
using Survey6.Packets.Capture;
using Survey6.Probe.Diagnostics;

namespace Survey6.Probe.Capture;

/// <summary>An interface could not be opened or configured; the message names it and says why.</summary>
public sealed class CaptureStartException : Exception
{
    public CaptureStartException()
    {
    }

    public CaptureStartException(string message)
        : base(message)
    {
    }

    public CaptureStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Opens the configured interfaces with libpcap (SharpPcap's LibPcapLiveDevice), hands every frame to
/// the <see cref="CaptureQueue"/> from the capture callback, and samples pcap_stats periodically.
/// One run at a time: <see cref="StartAsync"/> opens every interface or none, <see cref="StopAsync"/>
/// releases them and waits until the spool writer has closed the run's file.
/// </summary>
public sealed class CaptureEngine : IDisposable
{
    private readonly CaptureOptions _options;
    private readonly CaptureQueue _queue;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly OwnTraffic? _ownTraffic;
    private readonly Lock _gate = new();
    private readonly List<LiveInterface> _devices = [];
    private CaptureRun? _run;
    private ITimer? _statisticsTimer;
    private CounterSnapshot _finishedRuns;
    private long _nextRunId;
    private (long Timestamp, CounterSnapshot Totals) _rateBase;
    private CaptureRate _rate;
    private CaptureSettings _settings;

    /// <param name="options">The configuration.</param>
    /// <param name="queue">Where frames go.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Where capture events go.</param>
    /// <param name="ownTraffic">The probe's traffic with its C&amp;C, taken out of every filter; null: nothing is taken out.</param>
    public CaptureEngine(IOptions<CaptureOptions> options, CaptureQueue queue, TimeProvider time, ILogger<CaptureEngine> logger, OwnTraffic? ownTraffic = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _settings = _options.Settings;
        _queue = queue;
        _time = time;
        _logger = logger;
        _ownTraffic = ownTraffic;
    }

    /// <summary>The filter libpcap gets for <paramref name="filter"/> in force: the probe's own traffic taken out.</summary>
    public string AppliedFilter(string filter) => _ownTraffic?.Apply(filter) ?? filter;

    /// <summary>Interfaces, filter and snap length of the next run (a running one keeps what it opened with).</summary>
    public CaptureSettings Settings
    {
        get => Volatile.Read(ref _settings);
        set => Volatile.Write(ref _settings, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>
    /// Opens every interface of <paramref name="settings"/> with libpcap and sets the filter on it, with the probe's own
    /// traffic taken out (so it is compiled for that interface's link type), then closes them again. Nothing is captured.
    /// </summary>
    /// <exception cref="CaptureStartException">An interface is missing, cannot be opened, or the filter does not compile for it.</exception>
    public void Validate(CaptureSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        CloseAll(OpenDevices(settings));
    }

    /// <summary>Raised (on a libpcap thread) when an interface stops delivering because of an error, e.g. it went away.</summary>
    public event Action<string>? Failed;

    /// <summary>The run in progress, or null while not capturing.</summary>
    public CaptureRun? CurrentRun
    {
        get
        {
            lock (_gate)
                return _run;
        }
    }

    /// <summary>Frames and bytes per second seen by the capture callbacks over the last statistics interval.</summary>
    public CaptureRate Rate
    {
        get
        {
            lock (_gate)
                return _rate;
        }
    }

    /// <summary>Counters since the process started, over every run (heartbeats report these).</summary>
    public CounterSnapshot Totals()
    {
        lock (_gate)
            return _finishedRuns + (_run?.Totals() ?? default);
    }

    /// <summary>Opens every configured interface and starts capturing into the queue.</summary>
    /// <exception cref="CaptureStartException">An interface is missing or libpcap refused it; nothing is left open.</exception>
    public async Task<CaptureRun> StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_run is not null)
                throw new InvalidOperationException("capture is already running");
        }

        var settings = Settings;
        var opened = OpenDevices(settings);
        ReservePoolThreads(opened.Count);
        var run = new CaptureRun(Interlocked.Increment(ref _nextRunId), _time.GetUtcNow(), [.. opened.Select(d => d.Interface)], RefreshStatistics);
        try
        {
            // The writer learns about the run before its first frame can arrive.
            await _queue.SignalAsync(new RunStartedSignal(run), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            CloseAll(opened);
            throw;
        }

        lock (_gate)
        {
            _run = run;
            _devices.AddRange(opened);
            _rateBase = (_time.GetTimestamp(), Totals());
        }

        try
        {
            foreach (var live in opened)
            {
                var iface = live.Interface;
                live.Device.OnPacketArrival += (_, e) => OnPacket(iface, e);
                live.Device.OnCaptureStopped += (_, status) => OnCaptureStopped(run, iface, status);
                live.Device.StartCapture();
            }
        }
        catch (Exception e) when (e is PcapException or DeviceNotReadyException)
        {
            await StopAsync(CloseReason.Error, cancellationToken).ConfigureAwait(false);
            throw new CaptureStartException("cannot start capturing: " + e.Message, e);
        }

        _statisticsTimer = _time.CreateTimer(_ => SampleStatistics(), null, _options.StatisticsInterval, _options.StatisticsInterval);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            var names = string.Join(", ", run.Interfaces.Select(i => $"{i.Name} ({i.LinkType})"));
            ProbeLog.CaptureStarted(_logger, run.Id, names, run.Interfaces.Count > 0 ? run.Interfaces[0].Filter : settings.Filter, settings.SnapLength);
        }
        return run;
    }

    /// <summary>
    /// Stops the run: no callback after this, final pcap_stats, interfaces closed (released), then waits
    /// until the writer has closed the run's file with its final counters.
    /// </summary>
    public async Task StopAsync(CloseReason reason, CancellationToken cancellationToken)
    {
        CaptureRun? run;
        List<LiveInterface> devices;
        lock (_gate)
        {
            run = _run;
            devices = [.. _devices];
        }

        if (run is null)
            return;

        _statisticsTimer?.Dispose();
        _statisticsTimer = null;
        foreach (var live in devices)
        {
            try
            {
                live.Device.StopCapture();
            }
            catch (PcapException e)
            {
                ProbeLog.CaptureStopFailed(_logger, live.Interface.Name, e.Message);
            }
        }

        foreach (var live in devices)
            Drain(live);
        RefreshStatistics();
        CloseAll(devices);
        var stopped = new RunStoppedSignal(run, reason);
        await _queue.SignalAsync(stopped, cancellationToken).ConfigureAwait(false);
        await stopped.Done.WaitAsync(cancellationToken).ConfigureAwait(false);

        lock (_gate)
        {
            _finishedRuns += run.Totals();
            _run = null;
            _devices.Clear();
            _rate = default;
        }

        var totals = run.Totals();
        ProbeLog.CaptureStopped(_logger, run.Id, reason, totals.Captured, totals.Written, totals.KernelDropped, totals.InterfaceDropped, totals.QueueDropped, totals.DiskDropped);
    }

    /// <summary>
    /// Reads what the kernel captured but had not yet handed over, after the capture loop stopped and before the
    /// handle closes. libpcap gets frames in blocks that the kernel hands over when full or when the read timeout
    /// passes (TPACKET_V3): without this, a stop loses up to a read timeout of frames, those of the open block (a
    /// <c>systemctl restart</c> 10 ms after traffic lost all of it). Waits until the kernel has closed the open
    /// block, two read timeouts, and no longer than a second more on a link that keeps sending.
    /// </summary>
    private void Drain(LiveInterface live)
    {
        var settle = _options.ReadTimeout * 2;
        var limit = settle + TimeSpan.FromSeconds(1);
        var clock = Stopwatch.StartNew();
        int frames = 0;
        while (clock.Elapsed < limit)
        {
            GetPacketStatus status;
            PacketCapture packet;
            try
            {
                status = live.Device.GetNextPacket(out packet);
            }
            catch (Exception e) when (e is PcapException or DeviceNotReadyException or InvalidOperationException)
            {
                ProbeLog.CaptureStopFailed(_logger, live.Interface.Name, "reading the frames left in the kernel's buffer: " + e.Message);
                break;
            }

            if (status == GetPacketStatus.PacketRead)
            {
                OnPacket(live.Interface, packet);
                frames++;
                continue;
            }

            if (status == GetPacketStatus.Error || clock.Elapsed >= settle)
                break;
            if (status != GetPacketStatus.ReadTimeout)
                Thread.Sleep(10); // libpcap answered at once (the stop's break flag): not a wait for the kernel
        }

        ProbeLog.CaptureDrained(_logger, live.Interface.Name, frames);
    }

    /// <summary>Asks the writer to close its current file now; completes once it has.</summary>
    public async Task RotateAsync(CancellationToken cancellationToken)
    {
        var signal = new RotateSignal();
        await _queue.SignalAsync(signal, cancellationToken).ConfigureAwait(false);
        await signal.Done.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _statisticsTimer?.Dispose();
        lock (_gate)
        {
            CloseAll(_devices);
            _devices.Clear();
        }
    }

    /// <summary>
    /// SharpPcap runs each interface's capture loop on a thread-pool thread that blocks in poll(). Without
    /// headroom the spool writer and the timers wait for the pool to grow (a thread every half second
    /// or so) while the queue fills up.
    /// </summary>
    private static void ReservePoolThreads(int blockedThreads)
    {
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        var wanted = Environment.ProcessorCount + blockedThreads + 2;
        if (workers < wanted)
            ThreadPool.SetMinThreads(wanted, completionPorts);
    }

    private List<LiveInterface> OpenDevices(CaptureSettings settings)
    {
        LibPcapLiveDeviceList all;
        try
        {
            all = LibPcapLiveDeviceList.New();
        }
        catch (Exception e) when (e is DllNotFoundException or PcapException)
        {
            throw new CaptureStartException("cannot list interfaces with libpcap: " + e.Message, e);
        }

        var opened = new List<LiveInterface>();
        try
        {
            foreach (var name in settings.Interfaces)
            {
                var device = all.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.Ordinal))
                    ?? throw new CaptureStartException($"no interface '{name}' (libpcap sees: {string.Join(", ", all.Select(d => d.Name))})");
                opened.Add(Open(device, opened.Count, settings));
            }
        }
        catch
        {
            CloseAll(opened);
            throw;
        }

        return opened;
    }

    private LiveInterface Open(LibPcapLiveDevice device, int index, CaptureSettings settings)
    {
        var configuration = new DeviceConfiguration
        {
            Mode = _options.Promiscuous ? DeviceModes.Promiscuous : DeviceModes.None,
            Snaplen = settings.SnapLength,
            ReadTimeout = (int)Math.Max(1, _options.ReadTimeout.TotalMilliseconds),
            Immediate = _options.ImmediateMode,
            BufferSize = (int)_options.KernelBufferBytes,
            TimestampResolution = TimestampResolution.Nanosecond,
        };
        // Settings libpcap cannot honour (nanosecond stamps on an odd device) are logged, not fatal:
        // the timestamp conversion below works with either resolution.
        configuration.ConfigurationFailed += (_, e) => ProbeLog.CaptureSettingIgnored(_logger, device.Name, e.Property, e.Message);
        try
        {
            device.Open(configuration);
            // SharpPcap waits ReadTimeout*2 for its capture thread by default, shorter than its own
            // 500 ms poll: wait long enough that no callback can run after StopCapture returns.
            device.StopCaptureTimeout = TimeSpan.FromSeconds(3);
        }
        catch (Exception e) when (e is PcapException or PlatformNotSupportedException or DeviceNotReadyException)
        {
            device.Close();
            throw new CaptureStartException($"cannot capture on '{device.Name}': {e.Message}", e);
        }

        var linkType = (LinkType)(ushort)device.LinkType;
        var filter = AppliedFilter(settings.Filter);
        try
        {
            // pcap_compile on the open handle: the filter is checked against this interface's link type.
            device.Filter = filter;
        }
        catch (Exception e) when (e is PcapException or PlatformNotSupportedException or DeviceNotReadyException)
        {
            var problem = $"filter '{settings.Filter}' does not compile on '{device.Name}' (link type {linkType}): {e.Message}";
            if (filter != settings.Filter && Compiles(device, settings.Filter))
                problem = $"filter '{settings.Filter}' with the probe's own traffic left out ('{filter}') does not compile on '{device.Name}' (link type {linkType}): {e.Message}; Probe:Capture:ExcludeOwnTraffic false captures without leaving it out";
            device.Close();
            throw new CaptureStartException(problem, e);
        }

        var iface = new ProbeInterface(index, device.Name, linkType, settings.SnapLength, filter)
        {
            Description = string.IsNullOrWhiteSpace(device.Description) ? null : device.Description,
        };
        return new LiveInterface(device, iface);
    }

    private static bool Compiles(LibPcapLiveDevice device, string filter)
    {
        try
        {
            device.Filter = filter;
            return true;
        }
        catch (Exception e) when (e is PcapException or PlatformNotSupportedException or DeviceNotReadyException)
        {
            return false;
        }
    }

    private void OnPacket(ProbeInterface iface, PacketCapture e)
    {
        var data = e.Data;
        var header = e.Header;
        var original = header is PcapHeader pcap ? pcap.PacketLength : (uint)data.Length;
        // PosixTimeval holds seconds as a decimal with the device's resolution; exact for nanoseconds.
        var timestamp = (long)(header.Timeval.Value * 1_000_000_000m);
        _queue.TryEnqueue(iface, timestamp, data, Math.Max(original, (uint)data.Length));
    }

    private void OnCaptureStopped(CaptureRun run, ProbeInterface iface, CaptureStoppedEventStatus status)
    {
        if (status != CaptureStoppedEventStatus.ErrorWhileCapturing || !ReferenceEquals(CurrentRun, run))
            return;
        var reason = $"capture on '{iface.Name}' stopped with an error";
        ProbeLog.CaptureFailed(_logger, iface.Name, reason);
        Failed?.Invoke(reason);
    }

    private void SampleStatistics()
    {
        RefreshStatistics();
        lock (_gate)
        {
            if (_run is null)
                return;
            var now = _time.GetTimestamp();
            var totals = _finishedRuns + _run.Totals();
            var seconds = _time.GetElapsedTime(_rateBase.Timestamp, now).TotalSeconds;
            if (seconds > 0)
            {
                var delta = totals - _rateBase.Totals;
                _rate = new CaptureRate(delta.Captured / seconds, delta.CapturedBytes / seconds);
            }

            _rateBase = (now, totals);
        }
    }

    private void RefreshStatistics()
    {
        List<LiveInterface> devices;
        lock (_gate)
            devices = [.. _devices];
        foreach (var live in devices)
            live.Sample(_logger);
    }

    private static void CloseAll(List<LiveInterface> devices)
    {
        foreach (var live in devices)
            live.Close();
    }

    /// <summary>An open libpcap device and what pcap_stats said last (32-bit counters that wrap).</summary>
    private sealed class LiveInterface(LibPcapLiveDevice device, ProbeInterface iface)
    {
        private readonly Lock _statsGate = new();
        private uint _received;
        private uint _dropped;
        private uint _interfaceDropped;
        private bool _closed;

        public LibPcapLiveDevice Device { get; } = device;

        public ProbeInterface Interface { get; } = iface;

        // pcap_stats on Linux reads and clears the socket's counters and accumulates them in the
        // handle, so calls must not overlap; deltas of the 32-bit totals survive their wrap.
        public void Sample(ILogger logger)
        {
            lock (_statsGate)
            {
                if (_closed || !Device.Opened)
                    return;
                ICaptureStatistics stats;
                try
                {
                    stats = Device.Statistics;
                }
                catch (PcapException e)
                {
                    ProbeLog.StatisticsFailed(logger, Interface.Name, e.Message);
                    return;
                }

                var counters = Interface.Counters;
                Interlocked.Add(ref counters.PcapReceivedField, unchecked(stats.ReceivedPackets - _received));
                Interlocked.Add(ref counters.KernelDroppedField, unchecked(stats.DroppedPackets - _dropped));
                Interlocked.Add(ref counters.InterfaceDroppedField, unchecked(stats.InterfaceDroppedPackets - _interfaceDropped));
                (_received, _dropped, _interfaceDropped) = (stats.ReceivedPackets, stats.DroppedPackets, stats.InterfaceDroppedPackets);
            }
        }

        public void Close()
        {
            lock (_statsGate)
            {
                if (_closed)
                    return;
                _closed = true;
                Device.Close();
            }
        }
    }
}

/// <summary>Frames and bytes (on the wire) per second.</summary>
public readonly record struct CaptureRate(double FramesPerSecond, double BytesPerSecond);

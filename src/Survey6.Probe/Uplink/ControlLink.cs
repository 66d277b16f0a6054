using System.Diagnostics;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Probe.Control;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Probe.Spool;
using Survey6.Probe.Upload;

namespace Survey6.Probe.Uplink;

/// <summary>
/// The daemon's control stream: runs a <see cref="ControlChannel"/> for the joined identity in the state
/// directory, builds each heartbeat from <see cref="IProbeAgent.GetStatus"/> and the process, executes the
/// server's commands through the agent and reports every result. A command that fails is reported as failed;
/// nothing a command does can stop the daemon.
/// </summary>
public sealed class ControlLink : IControlLink
{
    private readonly ProbeStateDirectory _state;
    private readonly SpoolWriter _writer;
    private readonly TokenBucketRateLimiter _limiter;
    private readonly InterfaceTraffic _traffic;
    private readonly UploadOptions _upload;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private Policy _policy = new();
    private TimeSpan _lastCpu;
    private long _lastCpuTimestamp;

    public ControlLink(ProbeDaemonPaths paths, SpoolWriter writer, TokenBucketRateLimiter limiter, InterfaceTraffic traffic, IOptions<UploadOptions> upload, TimeProvider time, ILogger<ControlLink> logger)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(upload);
        _state = new ProbeStateDirectory(paths.Root);
        _writer = writer;
        _limiter = limiter;
        _traffic = traffic;
        _upload = upload.Value;
        _time = time;
        _logger = logger;
    }

    /// <summary>The version of the policy in force (the join's, then each applied update's).</summary>
    public long PolicyVersion
    {
        get
        {
            lock (_lock)
                return _policy.Version;
        }
    }

    public async Task RunAsync(IProbeAgent agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var options = ControlChannelOptions.FromStateDirectory(_state.Root) with
        {
            Time = _time,
            Disconnected = (e, delay) => UplinkLog.ControlDisconnected(_logger, e.Message, delay),
        };
        lock (_lock)
            _policy = ReadJoinPolicy(_state) ?? new Policy();
        using var channel = new ControlChannel(options, _ => ValueTask.FromResult(BuildHeartbeat(agent.GetStatus())));
        UplinkLog.ControlStarted(_logger, options.Server, options.HeartbeatInterval);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var commands = ExecuteCommandsAsync(channel, agent, stop.Token);
        try
        {
            await channel.RunAsync(stop.Token).ConfigureAwait(false);
        }
        catch (ControlChannelRefusedException e)
        {
            // Reconnecting cannot help (revoked, expired); capture and spooling go on without the stream.
            UplinkLog.ControlRefused(_logger, e.Message);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await commands.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private async Task ExecuteCommandsAsync(ControlChannel channel, IProbeAgent agent, CancellationToken cancellationToken)
    {
        await foreach (var command in channel.ReadCommandsAsync(cancellationToken).ConfigureAwait(false))
        {
            bool ok;
            string message;
            try
            {
                (ok, message) = await ExecuteAsync(command, channel, agent, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Unanswered: the server sends it again on the next stream.
                return;
            }
            catch (Exception e)
            {
                ok = false;
                message = $"{command.Kind} failed: {e.Message}";
            }

            UplinkLog.CommandExecuted(_logger, command.Id, command.Kind, ok, message);
            channel.ReportResult(command.Id, ok, message);
        }
    }

    private async Task<(bool Ok, string Message)> ExecuteAsync(Command command, ControlChannel channel, IProbeAgent agent, CancellationToken cancellationToken)
    {
        switch (command.Kind)
        {
            case CommandKind.Suspend:
                await agent.SuspendAsync($"suspended by the server (command {command.Id})", cancellationToken).ConfigureAwait(false);
                return (true, "suspended");
            case CommandKind.Resume:
                await agent.ResumeAsync(cancellationToken).ConfigureAwait(false);
                return (true, "resumed: " + agent.GetStatus().State);
            case CommandKind.UploadNow:
                agent.UploadNow();
                return (true, "uploading the spool now");
            case CommandKind.UpdatePolicy:
                return command.Policy is { } policy ? ApplyPolicy(policy, channel) : (false, "update-policy without a policy");
            default:
                return (false, $"unknown command kind {command.Kind}");
        }
    }

    /// <summary>
    /// Applies what can change while capturing (heartbeat interval, rotation, upload rate cap). Other changes are
    /// kept as they were and named in the result, which is then not ok; the version is adopted either way, so
    /// heartbeats show which policy the applied parts come from.
    /// </summary>
    internal (bool Ok, string Message) ApplyPolicy(Policy policy, ControlChannel? channel)
    {
        Policy current;
        lock (_lock)
            current = _policy.Clone();
        if (policy.Version <= current.Version)
            return (true, $"policy {policy.Version} is not newer than the running {current.Version}; nothing changed");

        var applied = new List<string>();
        var refused = new List<string>();
        var next = current.Clone();
        next.Version = policy.Version;

        if (policy.HeartbeatInterval is { } beat && beat.ToTimeSpan() > TimeSpan.Zero && !beat.Equals(current.HeartbeatInterval))
        {
            var interval = TimeSpan.FromTicks(Math.Clamp(beat.ToTimeSpan().Ticks, TimeSpan.TicksPerSecond, TimeSpan.TicksPerHour));
            if (channel is not null)
                channel.HeartbeatInterval = interval;
            next.HeartbeatInterval = Duration.FromTimeSpan(interval);
            applied.Add($"heartbeat_interval {interval}");
        }

        var size = policy.RotateSizeBytes > 0 ? (long)Math.Min(policy.RotateSizeBytes, long.MaxValue) : _writer.RotateSizeBytes;
        var age = policy.RotateAge is { } a && a.ToTimeSpan() > TimeSpan.Zero ? a.ToTimeSpan() : _writer.RotateAge;
        if (size != _writer.RotateSizeBytes || age != _writer.RotateAge)
        {
            try
            {
                _writer.SetRotation(size, age);
                next.RotateSizeBytes = (ulong)size;
                next.RotateAge = Duration.FromTimeSpan(age);
                applied.Add($"rotation {size} bytes / {age}");
            }
            catch (ArgumentOutOfRangeException e)
            {
                refused.Add($"rotation ({e.Message.Split(Environment.NewLine)[0]})");
            }
        }

        if (policy.UploadMaxBytesPerSecond != current.UploadMaxBytesPerSecond)
        {
            // 0 in a policy means no bound from the server: the probe's own cap stays.
            var rate = policy.UploadMaxBytesPerSecond > 0 ? (long)Math.Min(policy.UploadMaxBytesPerSecond, long.MaxValue) : _upload.MaxBytesPerSecond;
            _limiter.SetRate(rate);
            next.UploadMaxBytesPerSecond = policy.UploadMaxBytesPerSecond;
            applied.Add($"upload cap {rate} B/s");
        }

        if (policy.CaptureFilter != current.CaptureFilter)
            refused.Add("capture_filter (not supported yet; restart with Probe:Capture:Filter)");
        if (policy.Snaplen != current.Snaplen)
            refused.Add("snaplen (not supported yet; restart with Probe:Capture:SnapLength)");
        if (!Equals(policy.UploadWindowStart, current.UploadWindowStart) || !Equals(policy.UploadWindowEnd, current.UploadWindowEnd))
            refused.Add("upload window (not supported yet; uploads follow Probe:Upload)");
        if (!policy.UploadIdleUtilisation.Equals(current.UploadIdleUtilisation))
            refused.Add("upload_idle_utilisation (not supported yet; uploads follow Probe:Upload:IdleBytesPerSecond)");

        lock (_lock)
            _policy = next;
        var message = $"policy {policy.Version}: applied " + (applied.Count == 0 ? "nothing that changed" : string.Join(", ", applied));
        if (refused.Count > 0)
            message += "; not applied: " + string.Join(", ", refused);
        return (refused.Count == 0, message);
    }

    private Heartbeat BuildHeartbeat(ProbeStatus status)
    {
        var heartbeat = new Heartbeat
        {
            State = status.State switch
            {
                ProbeStatus.Suspended => ProbeState.Suspended,
                ProbeStatus.Degraded or ProbeStatus.Stopped => ProbeState.Degraded,
                _ => ProbeState.Capturing,
            },
            StateReason = status.State is ProbeStatus.Stopped ? "stopped" : status.StateReason ?? "",
            Capture = new CaptureCounters
            {
                Received = (ulong)Math.Max(0, status.Capture.Captured),
                KernelDropped = (ulong)Math.Max(0, status.Capture.KernelDropped),
                InterfaceDropped = (ulong)Math.Max(0, status.Capture.InterfaceDropped),
                QueueDropped = (ulong)Math.Max(0, status.Capture.QueueDropped),
                DiskDropped = (ulong)Math.Max(0, status.Capture.DiskDropped),
            },
            Spool = new Contracts.V1.SpoolStatus
            {
                Files = (uint)Math.Max(0, status.Spool.Files),
                Bytes = (ulong)Math.Max(0, status.Spool.Bytes),
                OldestAge = status.Spool.OldestAgeSeconds is { } age ? Duration.FromTimeSpan(TimeSpan.FromSeconds(Math.Max(0, age))) : null,
                FreeDiskBytes = (ulong)Math.Max(0, status.Spool.FreeDiskBytes),
                EvictedFiles = (ulong)Math.Max(0, status.Spool.EvictedFiles),
                EvictedFrames = (ulong)Math.Max(0, status.Spool.EvictedFrames),
            },
            SoftwareVersion = status.Version,
            PolicyVersion = PolicyVersion,
        };
        if (status.Upload is { } upload)
        {
            heartbeat.Upload = new UploadCounters
            {
                FilesUploaded = (ulong)Math.Max(0, upload.FilesUploaded),
                BytesUploaded = (ulong)Math.Max(0, upload.BytesUploaded),
                Failures = (ulong)Math.Max(0, upload.Failures),
                LastSuccess = upload.LastSuccess is { } at ? Timestamp.FromDateTimeOffset(at) : null,
            };
        }

        foreach (var rate in _traffic.LastRates)
        {
            heartbeat.Interfaces.Add(new InterfaceUtilisation
            {
                Name = rate.Name,
                RxBytesPerSecond = (ulong)rate.RxBytesPerSecond,
                TxBytesPerSecond = (ulong)rate.TxBytesPerSecond,
                Utilisation = rate.Utilisation,
            });
        }

        using var process = Process.GetCurrentProcess();
        heartbeat.RssBytes = (ulong)Math.Max(0, process.WorkingSet64);
        heartbeat.CpuPercent = CpuPercent(process.TotalProcessorTime);
        return heartbeat;
    }

    /// <summary>CPU time used since the previous heartbeat, in percent of one core.</summary>
    private double CpuPercent(TimeSpan cpu)
    {
        var now = _time.GetTimestamp();
        double percent = 0;
        lock (_lock)
        {
            if (_lastCpuTimestamp != 0)
            {
                var wall = _time.GetElapsedTime(_lastCpuTimestamp, now);
                if (wall > TimeSpan.Zero)
                    percent = Math.Max(0, (cpu - _lastCpu).TotalSeconds / wall.TotalSeconds * 100);
            }

            _lastCpu = cpu;
            _lastCpuTimestamp = now;
        }

        return percent;
    }

    private static Policy? ReadJoinPolicy(ProbeStateDirectory state)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(state.ProbeJsonPath))?["policy"] is { } node ? JsonParser.Default.Parse<Policy>(node.ToJsonString()) : null;
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidProtocolBufferException or InvalidJsonException)
        {
            return null;
        }
    }
}

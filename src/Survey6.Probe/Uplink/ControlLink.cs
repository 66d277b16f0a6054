using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Survey6.Contracts.V1;
using Survey6.Probe.Capture;
using Survey6.Probe.Control;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Probe.Policies;

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
    private readonly PolicyController _policies;
    private readonly ProbeCredentials _credentials;
    private readonly InterfaceTraffic _traffic;
    private readonly OwnTraffic? _ownTraffic;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private TimeSpan _lastCpu;
    private long _lastCpuTimestamp;

    public ControlLink(ProbeDaemonPaths paths, PolicyController policies, ProbeCredentials credentials, InterfaceTraffic traffic, TimeProvider time, ILogger<ControlLink> logger, OwnTraffic? ownTraffic = null)
    {
        _ownTraffic = ownTraffic;
        ArgumentNullException.ThrowIfNull(paths);
        _state = new ProbeStateDirectory(paths.Root);
        _policies = policies;
        _credentials = credentials;
        _traffic = traffic;
        _time = time;
        _logger = logger;
    }

    public async Task RunAsync(IProbeAgent agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var options = ControlChannelOptions.FromStateDirectory(_state.Root) with
        {
            Time = _time,
            Disconnected = (e, delay) => UplinkLog.ControlDisconnected(_logger, e.Message, delay),
            ClientCertificateSource = () => _credentials.Current,
            Connecting = RefreshOwnTrafficAsync,
        };
        if (_policies.HeartbeatInterval is { } interval)
            options = options with { HeartbeatInterval = interval };
        using var channel = new ControlChannel(options, _ => ValueTask.FromResult(BuildHeartbeat(agent.GetStatus())));
        void OnInterval(TimeSpan next) => channel.HeartbeatInterval = next;
        _policies.HeartbeatIntervalChanged += OnInterval;
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
            _policies.HeartbeatIntervalChanged -= OnInterval;
            await stop.CancelAsync().ConfigureAwait(false);
            await commands.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    /// <summary>Before each connection: the server's host resolved again, so the capture leaves out where it now is.</summary>
    private async Task RefreshOwnTrafficAsync(CancellationToken cancellationToken)
    {
        if (_ownTraffic is null)
            return;
        try
        {
            await _ownTraffic.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A capture restart that failed is the daemon's to report and retry; the control stream goes on.
            UplinkLog.OwnTrafficRefreshFailed(_logger, e.Message);
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
                (ok, message) = await ExecuteAsync(command, agent, cancellationToken).ConfigureAwait(false);
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

    private async Task<(bool Ok, string Message)> ExecuteAsync(Command command, IProbeAgent agent, CancellationToken cancellationToken)
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
                return command.Policy is { } policy
                    ? await _policies.ApplyAsync(policy, agent, cancellationToken).ConfigureAwait(false)
                    : (false, "update-policy without a policy");
            default:
                return (false, $"unknown command kind {command.Kind}");
        }
    }

    internal Heartbeat BuildHeartbeat(ProbeStatus status)
    {
        var fallback = status.Policy?.Fallback;
        var heartbeat = new Heartbeat
        {
            State = status.State switch
            {
                ProbeStatus.Suspended => ProbeState.Suspended,
                ProbeStatus.Degraded or ProbeStatus.Stopped => ProbeState.Degraded,
                // Running, but not with the policy the operator sent: the server should show it.
                _ when fallback is not null => ProbeState.Degraded,
                _ => ProbeState.Capturing,
            },
            StateReason = status.State is ProbeStatus.Stopped ? "stopped"
                : status.State is ProbeStatus.Capturing or ProbeStatus.Starting && fallback is not null ? $"running the last known-good policy {fallback.ToVersion}: {fallback.Reason}"
                : status.StateReason ?? "",
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
            PolicyVersion = status.Policy?.Version ?? _policies.Version,
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
}

using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Probe.Capture;
using Survey6.Probe.Diagnostics;
using Survey6.Probe.Policies;
using Survey6.Probe.Spool;

namespace Survey6.Probe.Daemon;

/// <summary>
/// <c>survey6 probe run</c>: recovers the spool, runs the spool writer, keeps capture running unless
/// suspended (retrying interfaces that fail), and runs the uploader and the control link when they
/// are registered. Suspend and resume come from the control socket or the control link; the flag
/// lives in the state directory, so a restart keeps it.
/// </summary>
public sealed class ProbeDaemon : BackgroundService, IProbeAgent
{
    private readonly CaptureEngine _engine;
    private readonly CaptureQueue _queue;
    private readonly SpoolWriter _writer;
    private readonly SpoolDirectory _spool;
    private readonly ProbeDaemonPaths _paths;
    private readonly ProbeIdentity _identity;
    private readonly CaptureOptions _capture;
    private readonly SpoolOptions _spoolOptions;
    private readonly TimeProvider _time;
    private readonly Survey6.Contracts.Diagnostics.RecurringFailure _captureStartFailures;
    private readonly ILogger _logger;
    private readonly IUploader? _uploader;
    private readonly IControlLink? _controlLink;
    private readonly IProbeTask[] _tasks;
    private readonly PolicyController _policy;
    private readonly OwnTraffic? _ownTraffic;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly SemaphoreSlim _transition = new(1, 1);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Survey6.Packets.Files.OwnerLock? _lock;
    private volatile bool _suspended;
    private volatile string? _suspendReason;
    private volatile string? _captureProblem;
    private volatile bool _captureFailed;
    private DateTimeOffset _stateSince;
    private volatile bool _stopping;

    public ProbeDaemon(
        CaptureEngine engine,
        CaptureQueue queue,
        SpoolWriter writer,
        SpoolDirectory spool,
        ProbeDaemonPaths paths,
        ProbeIdentity identity,
        IOptions<CaptureOptions> capture,
        IOptions<SpoolOptions> spoolOptions,
        TimeProvider time,
        ILogger<ProbeDaemon> logger,
        IHostApplicationLifetime lifetime,
        PolicyController policy,
        IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(capture);
        ArgumentNullException.ThrowIfNull(spoolOptions);
        _engine = engine;
        _queue = queue;
        _writer = writer;
        _spool = spool;
        _paths = paths;
        _identity = identity;
        _capture = capture.Value;
        _spoolOptions = spoolOptions.Value;
        _time = time;
        _captureStartFailures = new Survey6.Contracts.Diagnostics.RecurringFailure(time, Survey6.Contracts.Diagnostics.RecurringFailure.DefaultReminder);
        _logger = logger;
        _lifetime = lifetime;
        // Optional until the control and upload slices are wired in.
        _uploader = services.GetService<IUploader>();
        _controlLink = services.GetService<IControlLink>();
        _tasks = [.. services.GetServices<IProbeTask>()];
        _ownTraffic = services.GetService<OwnTraffic>();
        _policy = policy;
        _stateSince = time.GetUtcNow();
    }

    /// <summary>Why the daemon gave up (the spool writer failed), or null; <c>probe run</c> then exits non-zero so systemd restarts it.</summary>
    public string? Failure { get; private set; }

    /// <summary>Completes once recovery is done and the first capture attempt was made (or the daemon starts suspended).</summary>
    public Task Started => _started.Task;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Before anything touches the spool: a second daemon would "repair" the first one's open file.
        _lock = _paths.AcquireLock();
        if (!_identity.Joined)
            ProbeLog.NotJoined(_logger, _paths.Root, _identity.ProbeId);
        if (_uploader is null && _controlLink is null)
            ProbeLog.CaptureOnly(_logger, _paths.Root);
        var flag = _paths.ReadSuspended();
        _suspended = flag is not null;
        _suspendReason = flag?.Reason;
        if (flag is not null)
            ProbeLog.StartsSuspended(_logger, _identity.ProbeId, _paths.SuspendedPath);
        _spool.Recover();
        // Before the first capture: a crash loop after a policy change falls back here.
        _policy.ApplyAtStart();
        _engine.Failed += OnCaptureFailed;
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var writerTask = Task.Run(() => _writer.RunAsync(CancellationToken.None), CancellationToken.None);
        // Without its writer the probe would only count drops: stop, and let the service manager restart it.
        _ = writerTask.ContinueWith(
            t =>
            {
                Failure = t.Exception?.GetBaseException().Message ?? "the spool writer stopped";
                ProbeLog.ComponentFailed(_logger, "spool writer", Failure);
                _lifetime.StopApplication();
            },
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted,
            TaskScheduler.Default);
        var helpers = new List<Task>();
        if (_uploader is not null)
            helpers.Add(RunHelperAsync("uploader", () => _uploader.RunAsync(_spool, stoppingToken)));
        if (_controlLink is not null)
            helpers.Add(RunHelperAsync("control link", () => _controlLink.RunAsync(this, stoppingToken)));
        foreach (var task in _tasks)
            helpers.Add(RunHelperAsync(task.Name, () => task.RunAsync(stoppingToken)));
        helpers.Add(RunHelperAsync("policy health", () => WatchHealthAsync(stoppingToken)));

        try
        {
            if (_ownTraffic is not null)
            {
                // Before the first capture, so that the first file already leaves the C&C's traffic out.
                _ownTraffic.Changed = RestartForOwnTrafficAsync;
                await _ownTraffic.RefreshAsync(stoppingToken).ConfigureAwait(false);
            }

            while (!stoppingToken.IsCancellationRequested)
            {
                await _transition.WaitAsync(stoppingToken).ConfigureAwait(false);
                try
                {
                    if (_captureFailed)
                    {
                        _captureFailed = false;
                        await _engine.StopAsync(CloseReason.Error, stoppingToken).ConfigureAwait(false);
                    }

                    if (!_suspended && _engine.CurrentRun is null)
                        await TryStartCaptureAsync(stoppingToken).ConfigureAwait(false);
                }
                finally
                {
                    _transition.Release();
                }

                _started.TrySetResult();
                // Woken by a failure or a resume; otherwise retry a failed start after the interval.
                await _wake.WaitAsync(_capture.RetryInterval, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _stopping = true;
            _started.TrySetResult();
            await _transition.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                await _engine.StopAsync(CloseReason.Stop, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                _transition.Release();
                _queue.Complete();
                try
                {
                    await writerTask.ConfigureAwait(false);
                }
                catch (Exception) when (writerTask.IsFaulted)
                {
                    // Logged and reported through Failure already.
                }

                await Task.WhenAll(helpers).ConfigureAwait(false);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await base.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _engine.Failed -= OnCaptureFailed;
            _lock?.Dispose();
            _lock = null;
        }
    }

    public override void Dispose()
    {
        _lock?.Dispose();
        _transition.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    public async Task SuspendAsync(string reason, CancellationToken cancellationToken)
    {
        reason = string.IsNullOrWhiteSpace(reason) ? "suspended by an operator" : reason;
        await _transition.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_suspended)
            {
                _paths.WriteSuspended(new SuspendedFlag(reason, _time.GetUtcNow()));
                _suspended = true;
                _suspendReason = reason;
            }

            await _engine.StopAsync(CloseReason.Suspend, cancellationToken).ConfigureAwait(false);
            _captureProblem = null;
            _stateSince = _time.GetUtcNow();
            ProbeLog.Suspended(_logger, _identity.ProbeId, _suspendReason ?? reason);
        }
        finally
        {
            _transition.Release();
        }
    }

    public async Task ResumeAsync(CancellationToken cancellationToken)
    {
        await _transition.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _paths.ClearSuspended();
            var wasSuspended = _suspended;
            _suspended = false;
            _suspendReason = null;
            if (wasSuspended)
                ProbeLog.Resumed(_logger, _identity.ProbeId);
            if (!_stopping && _engine.CurrentRun is null)
                await TryStartCaptureAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _transition.Release();
        }
    }

    public Task RotateAsync(CancellationToken cancellationToken) => _engine.RotateAsync(cancellationToken);

    public async Task ApplyCaptureSettingsAsync(CaptureSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        await _transition.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var previous = _engine.Settings;
            if (_suspended || _stopping || _engine.CurrentRun is null)
            {
                // Not capturing: the next start (resume, retry) opens the new settings.
                _engine.Settings = settings;
                return;
            }

            // Frames queued before the stop still go to the old file: the stop travels through the queue behind them.
            await _engine.StopAsync(CloseReason.Policy, cancellationToken).ConfigureAwait(false);
            _engine.Settings = settings;
            try
            {
                await _engine.StartAsync(cancellationToken).ConfigureAwait(false);
                _captureProblem = null;
                _stateSince = _time.GetUtcNow();
            }
            catch (CaptureStartException)
            {
                _engine.Settings = previous;
                await TryStartCaptureAsync(cancellationToken).ConfigureAwait(false);
                throw;
            }
        }
        finally
        {
            _transition.Release();
        }
    }

    /// <summary>
    /// The C&amp;C's addresses changed: a running capture restarts with the new filter (the old file closes with
    /// <c>close_reason: policy</c>, as for a new policy); otherwise the next start takes it.
    /// </summary>
    private async Task RestartForOwnTrafficAsync(CancellationToken cancellationToken)
    {
        await _transition.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_suspended || _stopping || _engine.CurrentRun is null)
                return;
            await _engine.StopAsync(CloseReason.Policy, cancellationToken).ConfigureAwait(false);
            await TryStartCaptureAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _transition.Release();
        }
    }

    /// <summary>Tells the policy controller once a second whether the probe works, so a new policy can prove itself.</summary>
    private async Task WatchHealthAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            // Capture's health only: uploads that fail because the server is full say nothing about the policy.
            var (state, _) = CaptureState(_engine.CurrentRun, _writer.GuardState);
            _policy.ObserveHealth(state is ProbeStatus.Capturing or ProbeStatus.Suspended);
        }
    }

    public void UploadNow() => _uploader?.UploadNow();

    public ProbeStatus GetStatus()
    {
        var now = _time.GetUtcNow();
        var totals = _engine.Totals();
        var rate = _engine.Rate;
        var spool = _spool.Summary();
        var current = _writer.CurrentFile;
        var run = _engine.CurrentRun;
        var guard = _writer.GuardState;
        var upload = _uploader?.Status;
        var (state, reason) = CaptureState(run, guard);
        // Capturing, but nothing leaves the spool: the operator should know before the spool fills.
        if (state == ProbeStatus.Capturing && upload?.DegradedReason is { } failing)
            (state, reason) = (ProbeStatus.Degraded, failing);

        return new ProbeStatus
        {
            ProbeId = _identity.ProbeId,
            Joined = _identity.Joined,
            State = state,
            StateReason = reason,
            StateSince = _stateSince,
            Now = now,
            Version = _identity.Version,
            Interfaces = run?.Interfaces.Select(i => i.Name).ToList() ?? [.. _engine.Settings.Interfaces],
            // What libpcap applies (the probe's own traffic taken out), as the files' IDBs say.
            Filter = run is { Interfaces.Count: > 0 } ? run.Interfaces[0].Filter : _engine.AppliedFilter(_engine.Settings.Filter),
            OwnTraffic = _ownTraffic?.Status(),
            SnapLength = run is { Interfaces.Count: > 0 } ? run.Interfaces[0].SnapLength : _engine.Settings.SnapLength,
            Capture = new CaptureStatus
            {
                Captured = totals.Captured,
                Written = totals.Written,
                PcapReceived = totals.PcapReceived,
                KernelDropped = totals.KernelDropped,
                InterfaceDropped = totals.InterfaceDropped,
                QueueDropped = totals.QueueDropped,
                DiskDropped = totals.DiskDropped,
                FramesPerSecond = rate.FramesPerSecond,
                BytesPerSecond = rate.BytesPerSecond,
                QueueDepth = _queue.Count,
            },
            Spool = new SpoolStatus
            {
                Directory = _spool.Root,
                Files = spool.Files,
                Bytes = spool.Bytes,
                Oldest = spool.Oldest,
                OldestAgeSeconds = spool.Oldest is { } oldest ? (now - oldest).TotalSeconds : null,
                FreeDiskBytes = spool.FreeDiskBytes,
                Policy = SpoolOptions.PolicyName(_spoolOptions.DiskPolicy),
                Guard = guard.ToString().ToLowerInvariant(),
                MaxSpoolBytes = _spoolOptions.MaxSpoolBytes,
                MinFreeDiskBytes = _spoolOptions.MinFreeDiskBytes,
                EvictedFiles = spool.EvictedFiles,
                EvictedBytes = spool.EvictedBytes,
                EvictedFrames = spool.EvictedFrames,
                CurrentFile = current?.Name,
                CurrentFileBytes = current?.Bytes ?? 0,
                CurrentFileFrames = current?.Frames ?? 0,
                FilesClosed = _writer.FilesClosed,
            },
            Upload = upload,
            Policy = _policy.Status(),
        };
    }

    private (string State, string? Reason) CaptureState(CaptureRun? run, DiskGuardState guard) => (_suspended, run, guard, _captureProblem) switch
    {
        (true, _, _, _) => (ProbeStatus.Suspended, _suspendReason),
        (_, null, _, { } problem) => (ProbeStatus.Degraded, problem),
        (_, null, _, null) => (_stopping ? ProbeStatus.Stopped : ProbeStatus.Starting, null),
        (_, _, DiskGuardState.Paused, _) => (ProbeStatus.Degraded, "disk guard paused writing (pause-capture): waiting for uploads to free space"),
        (_, _, DiskGuardState.Full, _) => (ProbeStatus.Degraded, "disk guard: spool full and nothing left to evict"),
        _ => (ProbeStatus.Capturing, (string?)null),
    };

    private async Task TryStartCaptureAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _engine.StartAsync(cancellationToken).ConfigureAwait(false);
            _captureProblem = null;
            _stateSince = _time.GetUtcNow();
            if (_captureStartFailures.Clear() is > 1 and var failed)
                ProbeLog.CaptureRecovered(_logger, failed);
        }
        catch (CaptureStartException e)
        {
            if (_captureProblem != e.Message)
                _stateSince = _time.GetUtcNow();
            _captureProblem = e.Message;
            // Once per reason, then a reminder with the count: not a warning every retry interval, forever.
            var occurrence = _captureStartFailures.Report(e.Message);
            if (occurrence.Total == 1)
                ProbeLog.CaptureStartFailed(_logger, e.Message, _capture.RetryInterval);
            else if (occurrence.Log)
                ProbeLog.CaptureStillFailing(_logger, occurrence.Total, occurrence.Since, occurrence.Unlogged, e.Message);
        }
    }

    private void OnCaptureFailed(string reason)
    {
        _captureProblem = reason;
        _captureFailed = true;
        _stateSince = _time.GetUtcNow();
        _wake.Release();
    }

    private async Task RunHelperAsync(string name, Func<Task> run)
    {
        try
        {
            await Task.Run(run).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            // The capture must go on whatever happens to uploads or the control stream.
            ProbeLog.ComponentFailed(_logger, name, e.Message);
        }
    }
}

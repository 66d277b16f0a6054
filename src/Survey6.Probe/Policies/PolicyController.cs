using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Probe.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Diagnostics;
using Survey6.Probe.Join;
using Survey6.Probe.Spool;
using Survey6.Probe.Upload;
using Survey6.Probe.Uplink;

namespace Survey6.Probe.Policies;

/// <summary>What a policy makes the probe do, after the probe's own configuration filled what the policy leaves open.</summary>
public sealed record EffectivePolicy(CaptureSettings Capture, long RotateSizeBytes, TimeSpan RotateAge, long UploadMaxBytesPerSecond, TimeSpan? HeartbeatInterval, UploadWindow? UploadWindow, double? IdleUtilisation);

/// <summary>
/// Applies the server's policies. A policy's fields override the probe's configuration where they differ from the
/// join's policy (which the configuration stands for), so a restart reproduces what was applied. An update is
/// checked whole before anything changes: a filter that does not compile on an interface's link type, an interface
/// libpcap does not have, a snap length or rotation the probe cannot use reject it, and the policy in force stays.
/// An accepted one is applied live (capture restarted with the new settings, the queue drained into the old file
/// first), persisted, and proven healthy after a while; until then a crash loop falls back (<see cref="PolicyStore"/>).
/// </summary>
public sealed class PolicyController : IDisposable
{
    private readonly PolicyStore _store;
    private readonly CaptureEngine _engine;
    private readonly SpoolWriter _writer;
    private readonly TokenBucketRateLimiter _limiter;
    private readonly CaptureOptions _capture;
    private readonly SpoolOptions _spool;
    private readonly UploadOptions _upload;
    private readonly ProbePolicyOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly UploadSchedule _schedule;
    private readonly SemaphoreSlim _applying = new(1, 1);
    private long _healthySince;

    public PolicyController(
        ProbeDaemonPaths paths,
        CaptureEngine engine,
        SpoolWriter writer,
        TokenBucketRateLimiter limiter,
        IOptions<CaptureOptions> capture,
        IOptions<SpoolOptions> spool,
        IOptions<UploadOptions> upload,
        IOptions<ProbePolicyOptions> options,
        TimeProvider time,
        ILogger<PolicyController> logger,
        UploadSchedule? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(capture);
        ArgumentNullException.ThrowIfNull(spool);
        ArgumentNullException.ThrowIfNull(upload);
        ArgumentNullException.ThrowIfNull(options);
        _engine = engine;
        _schedule = schedule ?? new UploadSchedule();
        _writer = writer;
        _limiter = limiter;
        _capture = capture.Value;
        _spool = spool.Value;
        _upload = upload.Value;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _store = new PolicyStore(new ProbeStateDirectory(paths.Root), _options, time);
    }

    /// <summary>The heartbeat interval changed; the control link passes it to its channel.</summary>
    public event Action<TimeSpan>? HeartbeatIntervalChanged;

    public Policy Current => _store.Current;

    public long Version => _store.Current.Version;

    public PolicyFallback? Fallback => _store.Fallback;

    /// <summary>The interval of the policy in force, or null for the channel's default.</summary>
    public TimeSpan? HeartbeatInterval => Effective(_store.Current).HeartbeatInterval;

    /// <summary>
    /// At daemon start, before the first capture: the crash-loop check, then the policy in force set on capture,
    /// rotation and upload cap (not validated here: a missing interface makes the probe degraded and retried, as
    /// a configured one does).
    /// </summary>
    public void ApplyAtStart()
    {
        if (_store.RecordStart() is { } fallback)
            ProbeLog.PolicyFellBack(_logger, fallback.FromVersion, fallback.ToVersion, fallback.Reason);
        var effective = Effective(_store.Current);
        _engine.Settings = effective.Capture;
        if (_writer.CheckRotation(effective.RotateSizeBytes, effective.RotateAge) is null)
            _writer.SetRotation(effective.RotateSizeBytes, effective.RotateAge);
        _limiter.SetRate(effective.UploadMaxBytesPerSecond);
        _schedule.Set(effective.UploadWindow, effective.IdleUtilisation);
        var capture = effective.Capture.ToString();
        if (_store.Current.Version != _store.Join.Version || _store.AppliedAt is not null)
            ProbeLog.PolicyInForce(_logger, _store.Current.Version, capture, _store.Proven);
    }

    /// <summary>
    /// Called about once a second with whether the daemon works (capturing or suspended, not degraded). After
    /// <see cref="ProbePolicyOptions.HealthyAfter"/> of that in a row the policy in force becomes the last known-good one.
    /// </summary>
    public void ObserveHealth(bool healthy)
    {
        var now = _time.GetTimestamp();
        if (!healthy)
        {
            Interlocked.Exchange(ref _healthySince, 0);
            return;
        }

        var since = Interlocked.CompareExchange(ref _healthySince, now, 0);
        if (since != 0 && _time.GetElapsedTime(since, now) >= _options.HealthyAfter && _store.MarkHealthy())
            ProbeLog.PolicyProven(_logger, _store.Current.Version, _options.HealthyAfter);
    }

    /// <summary>
    /// Applies <paramref name="policy"/> if its version is above the one in force. Returns ok and a message for the
    /// command result: what changed, or why nothing did.
    /// </summary>
    /// <param name="policy">The server's policy.</param>
    /// <param name="agent">The daemon, which restarts capture; null only where no capture runs (changes to capture are then refused).</param>
    /// <param name="cancellationToken">Aborts waiting for the capture restart.</param>
    public async Task<(bool Ok, string Message)> ApplyAsync(Policy policy, IProbeAgent? agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(policy);
        await _applying.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (ok, message) = await ApplyCoreAsync(policy, agent, cancellationToken).ConfigureAwait(false);
            if (ok)
                ProbeLog.PolicyApplied(_logger, policy.Version, message);
            else
                ProbeLog.PolicyRejected(_logger, policy.Version, message);
            return (ok, message);
        }
        finally
        {
            _applying.Release();
        }
    }

    private async Task<(bool Ok, string Message)> ApplyCoreAsync(Policy policy, IProbeAgent? agent, CancellationToken cancellationToken)
    {
        var current = _store.Current;
        if (policy.Version <= current.Version)
            return (true, $"policy {policy.Version} is not newer than the running {current.Version}; nothing changed");
        if (_store.Fallback is { } fallback && fallback.FromVersion == policy.Version)
            return (false, $"policy {policy.Version} rejected, policy {current.Version} stays in force: it was rolled back at {fallback.At:u} ({fallback.Reason}); send a corrected policy under a new version");

        var from = Effective(current);
        var to = Effective(policy);
        var problems = new List<string>();
        if (to.Capture.SnapLength is < 64 or > CaptureOptions.FullSnapLength)
            problems.Add($"snaplen {policy.Snaplen} is outside 64..{CaptureOptions.FullSnapLength}");
        if (to.Capture.Interfaces.Any(string.IsNullOrWhiteSpace))
            problems.Add("interfaces contains an empty name");
        else if (to.Capture.Interfaces.Distinct(StringComparer.Ordinal).Count() != to.Capture.Interfaces.Count)
            problems.Add("interfaces names an interface twice");
        else if (to.Capture.Interfaces.Count > 1 && to.Capture.Interfaces.Contains("any", StringComparer.Ordinal))
            problems.Add("interfaces: 'any' already captures every interface; list it alone");
        if ((to.RotateSizeBytes != from.RotateSizeBytes || to.RotateAge != from.RotateAge) && _writer.CheckRotation(to.RotateSizeBytes, to.RotateAge) is { } rotation)
            problems.Add(rotation);

        var captureChanges = !to.Capture.SameAs(from.Capture);
        if (policy.UploadIdleUtilisation is < 0 or > 1 || double.IsNaN(policy.UploadIdleUtilisation))
            problems.Add($"upload_idle_utilisation {policy.UploadIdleUtilisation} is outside 0..1");
        if (policy.UploadWindowStart?.ToTimeSpan() is { } ws && (ws < TimeSpan.Zero || ws >= TimeSpan.FromDays(1)) || policy.UploadWindowEnd?.ToTimeSpan() is { } we && (we < TimeSpan.Zero || we >= TimeSpan.FromDays(1)))
            problems.Add("the upload window must lie within 00:00..24:00");
        if (problems.Count == 0 && captureChanges)
        {
            if (agent is null)
            {
                problems.Add("capture settings cannot change here (no capture runs in this process)");
            }
            else
            {
                try
                {
                    // The real check: libpcap opens each interface and compiles the filter for its link type.
                    _engine.Validate(to.Capture);
                }
                catch (CaptureStartException e)
                {
                    problems.Add(e.Message);
                }
            }
        }

        if (problems.Count > 0)
            return (false, $"policy {policy.Version} rejected, policy {current.Version} stays in force: {string.Join("; ", problems)}");

        var applied = new List<string>();
        if (captureChanges)
        {
            try
            {
                await agent!.ApplyCaptureSettingsAsync(to.Capture, cancellationToken).ConfigureAwait(false);
            }
            catch (CaptureStartException e)
            {
                // The interfaces changed between the check and the restart; the daemon went back to the old settings.
                return (false, $"policy {policy.Version} rejected, policy {current.Version} stays in force: {e.Message}");
            }

            applied.Add($"capture {to.Capture}");
        }

        if (to.RotateSizeBytes != from.RotateSizeBytes || to.RotateAge != from.RotateAge)
        {
            _writer.SetRotation(to.RotateSizeBytes, to.RotateAge);
            applied.Add($"rotation {to.RotateSizeBytes} bytes / {to.RotateAge}");
        }

        if (to.UploadMaxBytesPerSecond != from.UploadMaxBytesPerSecond)
        {
            _limiter.SetRate(to.UploadMaxBytesPerSecond);
            applied.Add($"upload cap {to.UploadMaxBytesPerSecond} B/s");
        }

        if (to.HeartbeatInterval is { } beat && beat != from.HeartbeatInterval)
        {
            HeartbeatIntervalChanged?.Invoke(beat);
            applied.Add($"heartbeat_interval {beat}");
        }

        if (to.UploadWindow != from.UploadWindow || !Nullable.Equals(to.IdleUtilisation, from.IdleUtilisation))
        {
            _schedule.Set(to.UploadWindow, to.IdleUtilisation);
            if (to.UploadWindow != from.UploadWindow)
                applied.Add($"upload window {(to.UploadWindow is { } w ? w.ToString() : "any time")}");
            if (!Nullable.Equals(to.IdleUtilisation, from.IdleUtilisation))
                applied.Add(to.IdleUtilisation is { } u ? (u > 0 ? $"upload_idle_utilisation {u:0.###} of link speed" : "upload_idle_utilisation 0 (no idle wait)") : "idle threshold from Probe:Upload");
        }

        _store.Adopt(policy);
        Interlocked.Exchange(ref _healthySince, 0);
        var message = $"policy {policy.Version}: applied " + (applied.Count == 0 ? "nothing that changed" : string.Join(", ", applied));
        return (true, message);
    }

    /// <summary>The policy's fields that differ from the join's policy, over the probe's configuration.</summary>
    public EffectivePolicy Effective(Policy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var join = _store.Join;
        var configured = _capture.Settings;
        var filter = policy.CaptureFilter != join.CaptureFilter
            ? string.IsNullOrWhiteSpace(policy.CaptureFilter) ? CaptureOptions.DefaultFilter : policy.CaptureFilter
            : configured.Filter;
        var snap = policy.Snaplen != join.Snaplen
            ? policy.Snaplen == 0 ? CaptureOptions.FullSnapLength : (int)Math.Min(policy.Snaplen, int.MaxValue)
            : configured.SnapLength;
        var interfaces = !policy.Interfaces.SequenceEqual(join.Interfaces, StringComparer.Ordinal) && policy.Interfaces.Count > 0
            ? (IReadOnlyList<string>)[.. policy.Interfaces]
            : configured.Interfaces;
        var size = policy.RotateSizeBytes != join.RotateSizeBytes && policy.RotateSizeBytes > 0
            ? (long)Math.Min(policy.RotateSizeBytes, long.MaxValue)
            : _spool.RotateSizeBytes;
        var age = !Equals(policy.RotateAge, join.RotateAge) && policy.RotateAge?.ToTimeSpan() is { } a && a > TimeSpan.Zero
            ? a
            : _spool.RotateAge;
        // 0 in a policy means no bound from the server: the probe's own cap stays.
        var rate = policy.UploadMaxBytesPerSecond != join.UploadMaxBytesPerSecond && policy.UploadMaxBytesPerSecond > 0
            ? (long)Math.Min(policy.UploadMaxBytesPerSecond, long.MaxValue)
            : _upload.MaxBytesPerSecond;
        TimeSpan? heartbeat = policy.HeartbeatInterval?.ToTimeSpan() is { } h && h > TimeSpan.Zero
            ? TimeSpan.FromTicks(Math.Clamp(h.Ticks, TimeSpan.TicksPerSecond, TimeSpan.TicksPerHour))
            : null;
        // The join's window and idle threshold stand for Probe:Upload (any time of day, IdleBytesPerSecond).
        var start = policy.UploadWindowStart?.ToTimeSpan() ?? TimeSpan.Zero;
        var end = policy.UploadWindowEnd?.ToTimeSpan() ?? TimeSpan.Zero;
        var windowChanged = start != (join.UploadWindowStart?.ToTimeSpan() ?? TimeSpan.Zero) || end != (join.UploadWindowEnd?.ToTimeSpan() ?? TimeSpan.Zero);
        var window = windowChanged && start != end ? new UploadWindow(start, end) : null;
        double? idle = policy.UploadIdleUtilisation.Equals(join.UploadIdleUtilisation) ? null : policy.UploadIdleUtilisation;
        return new EffectivePolicy(new CaptureSettings(interfaces, filter, snap), size, age, rate, heartbeat, window, idle);
    }

    public void Dispose() => _applying.Dispose();

    /// <summary>The policy in force for status and heartbeats.</summary>
    public PolicyStatus Status()
    {
        var policy = _store.Current;
        var effective = Effective(policy);
        return new PolicyStatus
        {
            Version = policy.Version,
            Source = _store.AppliedAt is null ? "join" : "server",
            AppliedAt = _store.AppliedAt,
            Proven = _store.Proven,
            Interfaces = effective.Capture.Interfaces,
            Filter = effective.Capture.Filter,
            SnapLength = effective.Capture.SnapLength,
            RotateSizeBytes = effective.RotateSizeBytes,
            RotateAgeSeconds = effective.RotateAge.TotalSeconds,
            UploadMaxBytesPerSecond = effective.UploadMaxBytesPerSecond,
            HeartbeatIntervalSeconds = effective.HeartbeatInterval?.TotalSeconds,
            UploadWindow = effective.UploadWindow?.ToString(),
            UploadIdleUtilisation = effective.IdleUtilisation,
            Fallback = _store.Fallback,
        };
    }
}

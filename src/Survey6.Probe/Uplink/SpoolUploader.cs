using System.Globalization;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.Manifests;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Probe.Spool;
using Survey6.Probe.Upload;

namespace Survey6.Probe.Uplink;

/// <summary>
/// Moves closed spool files to the server, oldest first, with <see cref="CaptureUploader"/>, and deletes each
/// (<see cref="SpoolDirectory.Complete"/>) only after the server acknowledged it. A file starts only when the
/// capture interfaces were idle for the quiet period (<see cref="IdleWindow"/>), after the maximum deferral, or
/// after <see cref="UploadNow"/>; every byte goes through the shared rate cap.
/// </summary>
public sealed class SpoolUploader : IUploader
{
    private readonly ProbeStateDirectory _state;
    private readonly ProbeCredentials? _credentials;
    private readonly UploadSchedule _schedule;
    private readonly UploadOptions _options;
    private readonly IUploadRateLimiter _limiter;
    private readonly InterfaceTraffic _traffic;
    private readonly TimeProvider _time;
    private readonly Survey6.Contracts.Diagnostics.RecurringFailure _uploadFailures;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly IdleWindow _window;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    // Files that failed, by sequence: not offered again before this timestamp, so one bad file does not hold up the rest.
    private readonly Dictionary<long, long> _retryAt = [];
    private long _ownBytes;
    private long _filesUploaded;
    private long _bytesUploaded;
    private long _failures;
    private volatile ErrorNote? _lastError; // one reference, so status reads message and time together
    private long _lastSuccessTicks;
    private long _failingSinceTicks; // 0 while uploads succeed
    private volatile bool _uploading;
    private volatile bool _uploadNow;

    public SpoolUploader(ProbeDaemonPaths paths, IOptions<UploadOptions> options, TokenBucketRateLimiter limiter, InterfaceTraffic traffic, TimeProvider time, ILoggerFactory loggers, ProbeCredentials? credentials = null, UploadSchedule? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        _state = new ProbeStateDirectory(paths.Root);
        _credentials = credentials;
        _schedule = schedule ?? new UploadSchedule();
        _options = options.Value;
        _limiter = new CountingLimiter(limiter, this);
        _traffic = traffic;
        _time = time;
        _uploadFailures = new Survey6.Contracts.Diagnostics.RecurringFailure(time, Survey6.Contracts.Diagnostics.RecurringFailure.DefaultReminder);
        _loggers = loggers;
        _logger = loggers.CreateLogger<SpoolUploader>();
        _window = new IdleWindow(_options.IdleBytesPerSecond, _options.QuietPeriod, _options.MaxDeferral, time);
    }

    public UploaderSnapshot Status
    {
        get
        {
            var last = Interlocked.Read(ref _lastSuccessTicks);
            var error = _lastError;
            var failing = Interlocked.Read(ref _failingSinceTicks);
            DateTimeOffset? failingSince = failing == 0 ? null : new DateTimeOffset(failing, TimeSpan.Zero);
            var failingFor = failingSince is { } since ? _time.GetUtcNow() - since : TimeSpan.Zero;
            return new UploaderSnapshot(
                Interlocked.Read(ref _filesUploaded),
                Interlocked.Read(ref _bytesUploaded),
                Interlocked.Read(ref _failures),
                last == 0 ? null : new DateTimeOffset(last, TimeSpan.Zero),
                _uploading,
                error?.Message,
                error?.At,
                failingSince,
                failingSince is { } start && failingFor > _options.DegradedAfter
                    ? string.Create(CultureInfo.InvariantCulture, $"uploads failing since {start:yyyy-MM-ddTHH:mm:ssZ}, longer than Probe:Upload:DegradedAfter ({_options.DegradedAfter:c}); last error: {error?.Message ?? "failed"}")
                    : null);
        }
    }

    public void UploadNow()
    {
        _uploadNow = true;
        _wake.Writer.TryWrite(true);
    }

    public async Task RunAsync(SpoolDirectory spool, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spool);
        using var connection = ProbeConnection.Open(_state, credentials: _credentials);
        // This uploader logs a failing file once per condition with a count (UploadFailed, UploadsStillFailing), so the
        // uploader's line per retried attempt goes to debug rather than repeating it.
        var uploader = new CaptureUploader(connection.Channel.CreateCallInvoker(), rateLimiter: _limiter, logger: _loggers.CreateLogger<CaptureUploader>(),
            timeProvider: _time, retryLogLevel: LogLevel.Debug);
        UplinkLog.UploaderStarted(_logger, connection.Server, connection.ProbeId, _options.IdleBytesPerSecond, _options.QuietPeriod, _options.MaxBytesPerSecond);
        void OnClosed(SpoolFile file) => _wake.Writer.TryWrite(true);
        spool.FileClosed += OnClosed;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sampling = SampleAsync(stop.Token);
        try
        {
            await UploadLoopAsync(spool, uploader, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            spool.FileClosed -= OnClosed;
            await stop.CancelAsync().ConfigureAwait(false);
            await sampling.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private async Task UploadLoopAsync(SpoolDirectory spool, CaptureUploader uploader, CancellationToken cancellationToken)
    {
        var deferring = false;
        var forced = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            var now = _time.GetTimestamp();
            var files = spool.ClosedFiles();
            var ready = files.Where(f => !_retryAt.TryGetValue(f.Sequence, out var at) || at <= now).ToList();
            if (files.Count == 0)
            {
                _uploadNow = false;
                _window.Decide(pending: false);
                deferring = forced = false;
            }

            if (ready.Count == 0)
            {
                // Woken by a new file or UPLOAD_NOW; the timeout lets failed files come back.
                await WaitAsync(files.Count == 0 ? TimeSpan.FromSeconds(30) : _options.SampleInterval, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var gate = _uploadNow ? UploadGate.Go : _window.Decide(pending: true);
            // Outside the server's daily window a file waits; the maximum deferral still sends it (Forced).
            if (gate == UploadGate.Go && !_uploadNow && !_schedule.InWindow(_time.GetUtcNow()))
                gate = UploadGate.Wait;
            if (gate == UploadGate.Wait)
            {
                if (!deferring)
                    UplinkLog.Deferring(_logger, files.Count, _window.LastOthersBytesPerSecond);
                deferring = true;
                await WaitAsync(_options.SampleInterval, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (gate == UploadGate.Forced && !forced)
                UplinkLog.DeferralExpired(_logger, _options.MaxDeferral);
            forced = gate == UploadGate.Forced;
            deferring = false;
            await UploadOneAsync(spool, uploader, ready[0], cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task UploadOneAsync(SpoolDirectory spool, CaptureUploader uploader, SpoolFile file, CancellationToken cancellationToken)
    {
        _uploading = true;
        try
        {
            var manifest = Manifest(file);
            var result = await uploader.UploadAsync(file.Path, manifest, attemptFailed: error => AttemptFailed(file.Name, error), cancellationToken: cancellationToken).ConfigureAwait(false);
            // Counted at the acknowledgement, before the file leaves the spool, so status never shows a file gone but not uploaded.
            Interlocked.Increment(ref _filesUploaded);
            Interlocked.Add(ref _bytesUploaded, result.BytesSent);
            Interlocked.Exchange(ref _lastSuccessTicks, _time.GetUtcNow().UtcTicks);
            Interlocked.Exchange(ref _failingSinceTicks, 0);

            // Only now, with the server's promise that it holds the file durably.
            spool.Complete(file);
            _retryAt.Remove(file.Sequence);
            UplinkLog.FileUploaded(_logger, file.Name, file.Size, result.Ack.Duplicate);
            if (_uploadFailures.Clear() is > 1 and var failed)
                UplinkLog.UploadsRecovered(_logger, failed);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is CaptureUploadException or IOException or UnauthorizedAccessException or ManifestException)
        {
            // Evicted by the disk guard while it was read: not a failure, it is simply gone.
            if (!spool.ClosedFiles().Any(f => f.Sequence == file.Sequence))
                return;
            Failing(e.Message); // the attempts retried before this one were counted as they failed
            _retryAt[file.Sequence] = _time.GetTimestamp() + (long)(_options.RetryDelay.TotalSeconds * _time.TimestampFrequency);
            // Once per kind of failure (a full server refuses every file alike), then a reminder with the count.
            // Keyed like a retried attempt's failure (its status code), so the attempts and the give-up are one condition.
            var occurrence = _uploadFailures.Report(e is CaptureUploadException u ? (u.Rejection is null ? u.StatusCode.ToString() : $"{u.StatusCode}/{u.Rejection}") : e.GetType().Name);
            if (occurrence.Total == 1)
                UplinkLog.UploadFailed(_logger, file.Name, _options.RetryDelay, e.Message);
            else if (occurrence.Log)
                UplinkLog.UploadsStillFailing(_logger, occurrence.Total, occurrence.Since, occurrence.Unlogged, e.Message);
        }
        finally
        {
            _uploading = false;
        }
    }

    /// <summary>
    /// An attempt the uploader retries failed ("Code: detail"): counted, and logged once per kind of failure like a file
    /// given up on, so a failure that lasts shows in the log once with reminders, however many attempts it takes.
    /// </summary>
    private void AttemptFailed(string file, string error)
    {
        Failing(error);
        var colon = error.IndexOf(':', StringComparison.Ordinal);
        var occurrence = _uploadFailures.Report(colon > 0 ? error[..colon] : error);
        if (occurrence.Total == 1)
            UplinkLog.UploadAttemptFailed(_logger, file, error);
        else if (occurrence.Log)
            UplinkLog.UploadsStillFailing(_logger, occurrence.Total, occurrence.Since, occurrence.Unlogged, error);
    }

    /// <summary>
    /// An attempt failed, one the uploader retries (counted as it happens: retries take minutes, and an operator
    /// should see them then, even if the file is stored in the end) or the last one: the count, the last error, and
    /// the start of the failing spell if this begins one.
    /// </summary>
    private void Failing(string error)
    {
        Interlocked.Increment(ref _failures);
        var now = _time.GetUtcNow();
        _lastError = new ErrorNote(error, now);
        Interlocked.CompareExchange(ref _failingSinceTicks, now.UtcTicks, 0);
    }

    /// <summary>The window from the manifest; a manifest without one (an empty repaired file) falls back to the file's start.</summary>
    private static UploadManifest Manifest(SpoolFile file)
    {
        var json = file.ReadManifestJson();
        return UploadManifest.For(CaptureManifest.Parse(json), json, file.StartedAt);
    }

    private async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timer.CancelAfter(timeout);
        try
        {
            await _wake.Reader.ReadAsync(timer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task SampleAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.SampleInterval, _time);
        var last = _time.GetTimestamp();
        _traffic.Sample();
        Interlocked.Exchange(ref _ownBytes, 0);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            var now = _time.GetTimestamp();
            var seconds = Math.Max(_time.GetElapsedTime(last, now).TotalSeconds, 1e-3);
            last = now;
            var total = _traffic.Sample();
            var rates = _traffic.LastRates;
            var link = rates.Count > 0 && rates.All(r => r.LinkBytesPerSecond > 0) ? rates.Sum(r => r.LinkBytesPerSecond) : 0;
            _window.IdleBytesPerSecond = _schedule.IdleBytesPerSecond(_options.IdleBytesPerSecond, link);
            // Framing (HTTP/2, TLS, TCP/IP) adds a few percent to what the upload hands over.
            var own = (long)(Interlocked.Exchange(ref _ownBytes, 0) * 1.05 / seconds);
            if (total is { } bytesPerSecond)
                _window.Record(bytesPerSecond, own);
            else
                _window.RecordUnknown();
        }
    }

    /// <summary>Counts what the upload sends (for <see cref="IdleWindow"/>) as it passes the shared rate cap.</summary>
    private sealed class CountingLimiter(IUploadRateLimiter inner, SpoolUploader owner) : IUploadRateLimiter
    {
        public async ValueTask WaitAsync(int bytes, CancellationToken cancellationToken)
        {
            await inner.WaitAsync(bytes, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref owner._ownBytes, bytes);
        }
    }

    private sealed record ErrorNote(string Message, DateTimeOffset At);
}

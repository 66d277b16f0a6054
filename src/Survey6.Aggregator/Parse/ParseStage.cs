using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Sources;
using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Parse;

/// <summary>
/// Stage <c>parse</c>: every capture its source lists becomes one packets file (and one captures row). Each capture
/// ends parsed, failed (retried by the cleanup stage with back-off) or quarantined; one bad capture never stops
/// the others.
/// </summary>
public sealed class ParseStage(
    ICaptureSource source,
    IRunLedger ledger,
    IOptions<AggregatorOptions> options,
    TimeProvider time,
    ILogger<ParseStage> logger) : IDisposable
{
    private readonly AggregatorOptions _options = options.Value;
    private PrefixPreservingAnonymiser? _anonymiser;
    private bool _anonymiserLoaded;

    /// <summary>
    /// The configured anonymiser, or null when anonymisation is off. Loaded once; a missing or bad key throws here,
    /// before any capture is touched, so it fails the run rather than quarantining captures.
    /// </summary>
    public PrefixPreservingAnonymiser? Anonymiser
    {
        get
        {
            if (!_anonymiserLoaded)
            {
                _anonymiser = AnonymisationKey.FromOptions(_options);
                _anonymiserLoaded = true;
            }
            return _anonymiser;
        }
    }

    public async Task RunAsync(StageRun run, CancellationToken ct)
    {
        var lake = new LakeLayout(_options.Layout.Lake);
        _ = Anonymiser;
        try
        {
            await ParseAllAsync(lake, run, ct).ConfigureAwait(false);
        }
        finally
        {
            ReleaseBuffers();
        }
    }

    /// <summary>After captures were read (<see cref="ProcessAsync"/>): gives the parse's buffers back (<see cref="ParseBuffers"/>).</summary>
    public void ReleaseBuffers()
    {
        if (Interlocked.Exchange(ref _readSinceRelease, 0) > 0)
            ParseBuffers.Release();
    }

    private int _readSinceRelease;

    private async Task ParseAllAsync(LakeLayout lake, StageRun run, CancellationToken ct)
    {
        int taken = 0;
        await foreach (var capture in source.ListAsync(ct).ConfigureAwait(false))
        {
            if (taken++ == _options.ParseBatchSize)
                break;
            var previous = ledger.GetCapture(capture.Sha256);
            if (previous is { Status: RunLedger.Parsed } && previous.OutputPath is { } output && File.Exists(output))
            {
                // Delivered again (at-least-once queue): the lake already holds it.
                await source.CompleteAsync(capture, CaptureOutcome.Parsed, null, ct).ConfigureAwait(false);
                continue;
            }
            if (capture.Refusal is { } refusal)
            {
                ledger.RecordCapture(capture, RunLedger.Quarantined, (previous?.Attempts ?? 0) + 1, refusal, null, null, null, run.RunId);
                Log.CaptureQuarantined(logger, capture.Sha256, capture.ProbeId, refusal);
                await source.CompleteAsync(capture, CaptureOutcome.Quarantined, refusal, ct).ConfigureAwait(false);
                continue;
            }
            var outcome = await ProcessAsync(lake, capture, (previous?.Attempts ?? 0) + 1, run, ct).ConfigureAwait(false);
            await source.CompleteAsync(capture, outcome.Outcome, outcome.Reason, ct).ConfigureAwait(false);
        }
    }

    /// <summary>One attempt at one capture, recorded in the ledger. Also used by the cleanup stage for retries.</summary>
    public async Task<(CaptureOutcome Outcome, string? Reason)> ProcessAsync(LakeLayout lake, PendingCapture capture, int attempt, StageRun run, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(capture);
        ArgumentNullException.ThrowIfNull(run);
        var anonymiser = Anonymiser;
        run.Input(capture.CapturePath);
        Interlocked.Increment(ref _readSinceRelease);
        var watch = Stopwatch.StartNew();
        ParseResult result;
        try
        {
            result = await new CaptureParser(lake, _options.ResolvedRowGroupSize, anonymiser, _options.Connections).ParseAsync(capture, run.RunId, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result = new ParseResult(ParseStatus.Failed, 0, null, null, e.GetType().Name + ": " + e.Message, null);
        }

        if (result.ManifestProblem is { } problem)
            Log.ManifestProblem(logger, capture.Sha256, capture.ProbeId, problem);

        switch (result.Status)
        {
            case ParseStatus.Parsed:
                ledger.RecordCapture(capture, RunLedger.Parsed, attempt, null, result.Frames, result.PacketsPath, null, run.RunId);
                run.Output(result.PacketsPath!, result.Frames);
                run.Output(result.CapturesPath!, 1);
                Log.CaptureParsed(logger, capture.Sha256, capture.ProbeId, result.Frames, watch.ElapsedMilliseconds);
                return (CaptureOutcome.Parsed, null);

            case ParseStatus.Failed when attempt < _options.MaxAttempts:
                var next = time.GetUtcNow() + Backoff(attempt);
                ledger.RecordCapture(capture, RunLedger.Failed, attempt, result.Reason, null, null, next, run.RunId);
                Log.CaptureFailed(logger, capture.Sha256, capture.ProbeId, attempt, next, result.Reason!);
                return (CaptureOutcome.Failed, result.Reason);

            default:
                var reason = result.Status == ParseStatus.Failed ? $"gave up after {attempt} attempts: {result.Reason}" : result.Reason!;
                ledger.RecordCapture(capture, RunLedger.Quarantined, attempt, reason, null, null, null, run.RunId);
                Log.CaptureQuarantined(logger, capture.Sha256, capture.ProbeId, reason);
                return (CaptureOutcome.Quarantined, reason);
        }
    }

    /// <summary>Exponential: the configured back-off after the first failure, doubled after each further one, capped.</summary>
    public TimeSpan Backoff(int attempt)
    {
        var ticks = _options.RetryBackoff.Ticks * Math.Pow(2, Math.Max(0, attempt - 1));
        return ticks >= _options.MaxRetryBackoff.Ticks ? _options.MaxRetryBackoff : TimeSpan.FromTicks((long)ticks);
    }

    public void Dispose() => _anonymiser?.Dispose();
}

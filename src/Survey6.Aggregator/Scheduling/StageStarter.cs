using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Survey6.Aggregator.Scheduling;

/// <summary>
/// Builds what a scheduled stage needs (the runner and, through it, the ledger, the capture source and the ingest
/// queue) when the stage is due, and keeps trying with back-off while that fails. Quartz builds a job before it
/// runs it, and a job whose construction throws puts its trigger in the error state for good: a ledger that could
/// not be opened once (another process migrating it, a full disk, a missing mount) would leave the stage dead while
/// the process runs on. Here the job itself has nothing to fail, and a failed start is logged and retried
/// (<see cref="AggregatorOptions.StartRetryBackoff"/>, doubled up to <see cref="AggregatorOptions.MaxStartRetryBackoff"/>)
/// until it succeeds or the host stops.
/// </summary>
public sealed class StageStarter(IServiceProvider services, IOptions<AggregatorOptions> options, TimeProvider time, ILogger<StageStarter> logger)
{
    public async Task<AggregatorRunner> StartAsync(AggregatorStage stage, CancellationToken ct)
    {
        var delay = options.Value.StartRetryBackoff;
        var name = stage.ToString().ToLowerInvariant();
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                var runner = services.GetRequiredService<AggregatorRunner>();
                if (attempt > 1)
                    Log.StageStartRecovered(logger, name, attempt);
                return runner;
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                Log.StageStartFailed(logger, e, name, attempt, delay);
            }
            await Task.Delay(delay, time, ct).ConfigureAwait(false);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.Value.MaxStartRetryBackoff.Ticks));
        }
    }
}

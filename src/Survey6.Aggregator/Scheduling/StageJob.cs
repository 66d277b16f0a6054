using Quartz;

namespace Survey6.Aggregator.Scheduling;

/// <summary>A scheduled run of one stage; the stage is in the job data so the three jobs share this class.</summary>
[DisallowConcurrentExecution]
public sealed class StageJob(AggregatorRunner runner, Microsoft.Extensions.Options.IOptions<AggregatorOptions> options) : IJob
{
    public const string StageKey = "stage";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var stage = Enum.Parse<AggregatorStage>(context.MergedJobDataMap.GetString(StageKey)!, ignoreCase: true);
        await runner.RunAsync(stage, options.Value.LockWait, cancellationToken).ConfigureAwait(false);
    }
}

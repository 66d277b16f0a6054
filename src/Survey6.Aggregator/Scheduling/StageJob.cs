using Microsoft.Extensions.Options;
using Quartz;

namespace Survey6.Aggregator.Scheduling;

/// <summary>
/// A scheduled run of one stage; the stage is in the job data so the three jobs share this class. Its only
/// dependencies cannot fail to build: the stage's own services are built when it runs (<see cref="StageStarter"/>).
/// </summary>
[DisallowConcurrentExecution]
public sealed class StageJob(StageStarter starter, IOptions<AggregatorOptions> options) : IJob
{
    public const string StageKey = "stage";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var stage = Enum.Parse<AggregatorStage>(context.MergedJobDataMap.GetString(StageKey)!, ignoreCase: true);
        var runner = await starter.StartAsync(stage, cancellationToken).ConfigureAwait(false);
        await runner.RunAsync(stage, options.Value.LockWait, cancellationToken).ConfigureAwait(false);
    }
}

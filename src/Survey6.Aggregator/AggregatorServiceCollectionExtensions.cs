using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Quartz;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Cleanup;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Scheduling;
using Survey6.Aggregator.Sources;
using Survey6.Ingest;

namespace Survey6.Aggregator;

public static class AggregatorServiceCollectionExtensions
{
    /// <summary>The stages, the ledger and the capture source, with options bound from <c>Aggregator</c> and validated on start.</summary>
    public static IServiceCollection AddSurvey6Aggregator(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<AggregatorOptions>().Bind(configuration.GetSection(AggregatorOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AggregatorOptions>, AggregatorOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        // The ledger and the stage lock go together: SQLite and an flock on the data folder by default, PostgreSQL and
        // its advisory locks when Aggregator:Ledger:ConnectionString is set (workers on several hosts).
        services.TryAddSingleton<RunLedger>();
        services.TryAddSingleton<PostgresRunLedger>();
        services.TryAddSingleton<IRunLedger>(sp => sp.GetRequiredService<IOptions<AggregatorOptions>>().Value.Ledger.IsPostgres
            ? sp.GetRequiredService<PostgresRunLedger>()
            : sp.GetRequiredService<RunLedger>());
        services.TryAddSingleton<IStageLocks>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<AggregatorOptions>>();
            return options.Value.Ledger.IsPostgres ? new PostgresStageLocks(options) : new FileStageLocks(options);
        });
        // Aggregator:Source picks the scan or the ingest queue; the queue itself (IIngestQueue) is registered by
        // AddSurvey6IngestQueue, by the C&C when the aggregator is embedded or by AddSurvey6AggregatorQueue otherwise.
        services.TryAddSingleton<DirectoryCaptureSource>();
        // A factory, so that a host without a queue (the directory scan) still passes service validation.
        services.TryAddSingleton(sp => ActivatorUtilities.CreateInstance<IngestQueueCaptureSource>(sp));
        services.TryAddSingleton<ICaptureSource>(sp => sp.GetRequiredService<IOptions<AggregatorOptions>>().Value.Source == CaptureSourceKind.Queue
            ? sp.GetRequiredService<IngestQueueCaptureSource>()
            : sp.GetRequiredService<DirectoryCaptureSource>());
        services.TryAddSingleton<ParseStage>();
        services.TryAddSingleton<AggregateStage>();
        services.TryAddSingleton<CleanupStage>();
        services.TryAddSingleton<AggregatorRunner>();
        services.TryAddSingleton<StageStarter>();
        return services;
    }

    /// <summary>
    /// The ingest queue for a stand-alone aggregator (<c>survey6 aggregate run|once</c>): options from <c>Ingest</c>, with
    /// the SQLite file defaulting to <c>DATA/ingest.db</c>, where the C&amp;C keeps it.
    /// </summary>
    public static IServiceCollection AddSurvey6AggregatorQueue(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddSurvey6IngestQueue(configuration);
        services.AddOptions<IngestOptions>().PostConfigure<IOptions<AggregatorOptions>>((ingest, aggregator) =>
        {
            if (ingest.Kind == IngestQueueKind.Sqlite && string.IsNullOrWhiteSpace(ingest.Sqlite.Path))
                ingest.Sqlite.Path = aggregator.Value.Layout.IngestDatabase;
        });
        return services;
    }

    /// <summary>
    /// Quartz with a persistent SQLite job store (<c>DATA/aggregator-scheduler.db</c>) and one cron trigger per stage
    /// (<c>Aggregator:Schedules:Parse|Aggregate|Cleanup</c>). A trigger missed while the daemon was down fires once
    /// at start-up.
    /// </summary>
    public static IServiceCollection AddSurvey6AggregatorScheduling(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = configuration.GetSection(AggregatorOptions.SectionName).Get<AggregatorOptions>() ?? new AggregatorOptions();
        // The store's name comes from WorkerName: check it before any folder is made from it.
        if (options.WorkerName is { } worker && !AggregatorOptionsValidator.IsValidWorkerName(worker))
            throw new OptionsValidationException(Options.DefaultName, typeof(AggregatorOptions), [AggregatorOptionsValidator.WorkerNameError(worker)]);
        var store = options.ResolvedSchedulerStorePath;
        // Before Quartz's own hosted service: hosted services start in registration order. It also makes the store's
        // folder and file (nothing is created here, at registration: the C&C makes its data directory owner-only first).
        services.AddHostedService(_ => new SchedulerStoreGuard(store));

        services.AddQuartz("survey6-aggregator", q =>
        {
            q.UsePersistentStore(s =>
            {
                s.UseSqlite($"Data Source={store}");
                s.ProvisionSchema();
            });
            Schedule(q, AggregatorStage.Parse, options.Schedules.Parse);
            Schedule(q, AggregatorStage.Aggregate, options.Schedules.Aggregate);
            Schedule(q, AggregatorStage.Cleanup, options.Schedules.Cleanup);
        });
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        return services;
    }

    private static void Schedule(IQuartzBuilder q, AggregatorStage stage, string cron)
    {
        var name = stage.ToString().ToLowerInvariant();
        var job = new JobKey(name, "survey6-aggregator");
        q.AddJob<StageJob>(j => j.WithIdentity(job).UsingJobData(StageJob.StageKey, name).StoreDurably().DisallowConcurrentExecution());
        q.AddTrigger(t => t
            .ForJob(job)
            .WithIdentity(name + "-cron", "survey6-aggregator")
            .WithSchedule(CronScheduleBuilder.Create(cron).InTimeZone(TimeZoneInfo.Utc).WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed)));
    }
}

using Microsoft.Extensions.DependencyInjection;

namespace Survey6.Server.Control;

/// <summary>Registers the control slice: options, notifier, connections, health tracking, commands and the background work.</summary>
public static class ControlServiceCollectionExtensions
{
    public static IServiceCollection AddSurvey6Control(this IServiceCollection services)
    {
        services.AddOptions<HealthOptions>().BindConfiguration(HealthOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ControlOptions>().BindConfiguration(ControlOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ProbeNotifier>();
        services.AddSingleton<IProbeStateNotifier>(sp => sp.GetRequiredService<ProbeNotifier>());
        services.AddSingleton<ProbeConnections>();
        services.AddSingleton<ProbeHealthEvaluator>();
        services.AddSingleton(sp =>
        {
            var writer = ActivatorUtilities.CreateInstance<HeartbeatWriter>(sp);
            sp.GetRequiredService<ProbeNotifier>().BeforeSubscribe = async cancellationToken =>
                await writer.WaitUntilStoredAsync(cancellationToken).ConfigureAwait(false);
            return writer;
        });
        services.AddSingleton<HeartbeatRecorder>();
        services.AddSingleton(sp => new ProbeHealthQuery(
            sp.GetRequiredService<Storage.StateDatabase>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<HealthOptions>>(),
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Options.PolicyOptions>>(), sp.GetRequiredService<ProbeConnections>())
        {
            Writer = sp.GetRequiredService<HeartbeatWriter>(),
        });
        services.AddSingleton<ProbeCommands>();
        services.AddSingleton(sp => new ProbeRevoker(
            sp.GetRequiredService<Storage.StateDatabase>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ProbeNotifier>(),
            sp.GetService<Security.ProbeRevocations>()));
        services.AddHostedService<ControlBackgroundService>();
        // Registered after the control service so that it stops before it: the evaluator's last round finds the writer still there.
        services.AddHostedService<HeartbeatWriterService>();
        return services;
    }
}

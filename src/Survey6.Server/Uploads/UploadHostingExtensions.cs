using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Data;
using Survey6.Ingest;
using Survey6.Server.Options;
using Survey6.Server.Pki;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// Wiring of the upload service: <see cref="CaptureStore"/> (options in <c>Server:Uploads</c>, data directory
/// defaulting to <c>Server:DataDirectory</c>), the ingest queue (<c>Ingest</c>; SQLite at <c>DATA/ingest.db</c>
/// unless configured), the sink between them, recovery before serving, and the gRPC service.
/// </summary>
public static class UploadHostingExtensions
{
    public const string SectionName = "Server:Uploads";

    public static IServiceCollection AddSurvey6Uploads(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<CaptureStoreOptions>()
            .BindConfiguration(SectionName)
            .PostConfigure<IOptions<ServerOptions>>((options, server) =>
            {
                if (string.IsNullOrWhiteSpace(options.DataDirectory))
                    options.DataDirectory = server.Value.DataDirectory;
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CaptureStoreOptions>, CaptureStoreOptionsValidator>());

        services.AddSurvey6IngestQueue(configuration);
        // Through the layout, so the data directory is owner-only before the queue puts its file in it.
        services.AddOptions<IngestOptions>().PostConfigure<DataLayout>((options, layout) =>
        {
            if (options.Kind == IngestQueueKind.Sqlite && string.IsNullOrWhiteSpace(options.Sqlite.Path))
                options.Sqlite.Path = layout.IngestDatabase;
        });

        services.AddOptions<UploadFailureOptions>().BindConfiguration(UploadFailureOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<UploadFailures>();
        services.AddSingleton<UploadRecords>();
        services.AddSingleton<ICaptureStoredSink, IngestingCaptureSink>();
        services.AddSingleton<IProbeAnnotations, StateDbProbeAnnotations>();
        services.AddSingleton(sp =>
        {
            // The data directory is owner-only before the store adds its folders to it.
            sp.GetRequiredService<DataLayout>();
            return new CaptureStore(
                sp.GetRequiredService<IOptions<CaptureStoreOptions>>(),
                sp.GetRequiredService<ICaptureStoredSink>(),
                sp.GetRequiredService<ILogger<CaptureStore>>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<IProbeAnnotations>());
        });
        services.AddHostedService<CaptureStoreRecovery>();
        services.AddHostedService<AbandonedUploadSweeper>();
        return services;
    }

    public static WebApplication MapSurvey6Uploads(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<UploadService>();
        return app;
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
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

    /// <summary>The ingest queue's file when <c>Ingest:Sqlite:Path</c> is not set, relative to the data directory.</summary>
    public const string DefaultIngestDatabase = "ingest.db";

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
        services.AddOptions<IngestOptions>().PostConfigure<IOptions<ServerOptions>>((options, server) =>
        {
            if (options.Kind == IngestQueueKind.Sqlite && string.IsNullOrWhiteSpace(options.Sqlite.Path))
                options.Sqlite.Path = Path.Combine(Path.GetFullPath(server.Value.DataDirectory), DefaultIngestDatabase);
        });

        services.AddSingleton<UploadRecords>();
        services.AddSingleton<ICaptureStoredSink, IngestingCaptureSink>();
        services.AddSingleton<IProbeAnnotations, StateDbProbeAnnotations>();
        services.AddSingleton(sp =>
        {
            // The PKI creates the data directory owner-only; it must exist before the store adds its folders to it.
            sp.GetRequiredService<ServerPki>();
            return new CaptureStore(
                sp.GetRequiredService<IOptions<CaptureStoreOptions>>(),
                sp.GetRequiredService<ICaptureStoredSink>(),
                sp.GetRequiredService<ILogger<CaptureStore>>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<IProbeAnnotations>());
        });
        services.AddHostedService<CaptureStoreRecovery>();
        return services;
    }

    public static WebApplication MapSurvey6Uploads(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<UploadService>();
        return app;
    }
}

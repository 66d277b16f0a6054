using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Data;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Diagnostics;
using Survey6.Server.Enrollment;
using Survey6.Server.Housekeeping;
using Survey6.Server.Metrics;
using Survey6.Server.Options;
using Survey6.Server.Pki;
using Survey6.Server.Repository;
using Survey6.Server.Security;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;
using Survey6.Server.Web;

namespace Survey6.Server.Hosting;

/// <summary>
/// Wiring of the C&amp;C server. <see cref="AddSurvey6Server"/> registers options, the data
/// directory's PKI and state.db, the stores, gRPC with probe authentication and the Kestrel
/// endpoints; <see cref="MapSurvey6Server"/> maps the services. Later slices add their gRPC
/// services with <c>app.MapGrpcService&lt;T&gt;()</c>: the authentication interceptor covers
/// every mapped service.
/// </summary>
public static class ServerHostingExtensions
{
    public static WebApplicationBuilder AddSurvey6Server(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSurvey6Server();
        builder.Services.AddSurvey6Uploads(builder.Configuration);
        return builder;
    }

    public static IServiceCollection AddSurvey6Server(this IServiceCollection services)
    {
        services.AddOptions<ServerOptions>()
            .BindConfiguration(ServerOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => ListenAddress.TryParse(o.GrpcListen, out _), "Server:GrpcListen must be ADDR:PORT, [IPV6]:PORT, localhost:PORT or *:PORT")
            .Validate(o => string.IsNullOrWhiteSpace(o.HttpListen) || ListenAddress.TryParse(o.HttpListen, out _), "Server:HttpListen must be ADDR:PORT, [IPV6]:PORT, localhost:PORT, *:PORT or empty")
            .ValidateOnStart();
        services.AddOptions<JoinRateLimitOptions>().BindConfiguration(JoinRateLimitOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<RenewalRateLimitOptions>().BindConfiguration(RenewalRateLimitOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<PolicyOptions>().BindConfiguration(PolicyOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        // Everyone asks the layout; whoever asks first (the PKI, the ingest queue, a page) finds the data directory owner-only.
        services.TryAddSingleton(sp =>
        {
            var configuration = sp.GetService<IConfiguration>();
            var layout = DataLayout.ForServer(sp.GetRequiredService<IOptions<ServerOptions>>().Value.DataDirectory, key => configuration?[key]);
            layout.EnsureOwnerOnly(sp.GetRequiredService<ILoggerFactory>().CreateLogger<DataLayout>());
            return layout;
        });
        services.AddSingleton<ServerPki>();
        services.AddSingleton(sp => StateDatabase.OpenAndMigrate(sp.GetRequiredService<ServerPki>().Directory.StateDatabase));
        services.AddSingleton<TokenStore>();
        services.AddSingleton<ProbeStore>();
        services.AddSingleton<EventStore>();
        services.AddSingleton<SettingsStore>();
        services.AddSingleton<ServerCounters>();
        services.AddSingleton<RefusalEventThrottle>();
        services.AddSingleton<JoinRateLimiter>();
        services.AddSingleton<RenewalRateLimiter>();
        services.AddSingleton(sp => ProbeRevocations.Load(sp.GetRequiredService<ProbeStore>()));
        services.AddSingleton<ProbeCertificateValidator>();
        services.AddSurvey6Control();
        services.AddOptions<HousekeepingOptions>().BindConfiguration(HousekeepingOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<StateSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<StateSweeper>());

        services.AddGrpc(grpc => grpc.Interceptors.Add<ProbeAuthenticationInterceptor>());
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, KestrelEndpoints>();
        services.AddSurvey6Web();
        services.AddSurvey6Api();
        services.AddSurvey6Metrics();
        services.AddSurvey6AptRepository();
        return services;
    }

    public static WebApplication MapSurvey6Server(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // The data directory owner-only, then the CA and database, now: a bad path or mode fails the start, not the first join.
        app.Services.GetRequiredService<DataLayout>();
        var pki = app.Services.GetRequiredService<ServerPki>();
        app.Services.GetRequiredService<StateDatabase>();

        app.UseSurvey6Metrics();
        app.UseSurvey6AptRepository();
        app.UseSurvey6Api();
        app.MapGrpcService<EnrollmentService>();
        app.MapSurvey6Uploads();
        app.MapGrpcService<ControlService>();
        // Degraded (503, a line per reason) while uploads would fail or keep failing: the disk below its floor, errors in the store.
        app.MapGet("/healthz", (Metrics.ServerHealth health) => health.Read() is { Degraded: true } degraded
            ? Results.Text(string.Concat(degraded.Reasons.Select(r => $"degraded: {r}\n")), statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ok\n"));
        // Public: probes fetch it before joining and check it against their pin (docs/protocol.md).
        app.MapGet("/v1/ca.pem", () => Results.Text(pki.Authority.CertificatePem, "application/x-pem-file"));
        app.MapSurvey6Api();
        app.MapSurvey6AptRepository();
        app.MapSurvey6Web();
        app.MapSurvey6Metrics();

        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var endpoints = ServerEndpoints.From(app.Services);
            // A new process has no failing uploads yet: what a previous one recorded no longer holds.
            app.Services.GetRequiredService<SettingsStore>().Set(
                (SettingsStore.ServerUrl, endpoints.AdvertisedUrl.ToString().TrimEnd('/')), (SettingsStore.UploadFailures, ""));
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Survey6.Server");
            ServerLog.Listening(logger, endpoints.GrpcUrl.ToString(), endpoints.HttpUrl?.ToString() ?? "none", pki.Authority.Pin);
        });
        return app;
    }
}

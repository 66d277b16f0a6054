using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Prometheus;
using Survey6.Server.Api;

namespace Survey6.Server.Metrics;

/// <summary>Wiring of /metrics (Prometheus), request metrics and the standard gRPC health service.</summary>
public static class MetricsHostingExtensions
{
    public const string Path = "/metrics";

    public static IServiceCollection AddSurvey6Metrics(this IServiceCollection services)
    {
        services.AddOptions<MetricsOptions>().BindConfiguration(MetricsOptions.SectionName).ValidateOnStart();
        services.AddSingleton<ServerMetrics>();
        services.AddSingleton<DataDiskHealth>();
        services.AddSingleton<ServerHealth>();
        // grpc.health.v1.Health: "" answers for the server as a whole.
        services.AddGrpcHealthChecks().AddCheck<StateDatabaseHealthCheck>("state-db").AddCheck<ServerHealth>("server");
        return services;
    }

    /// <summary>Request metrics for HTTP and gRPC; call before <see cref="ApiHostingExtensions.UseSurvey6Api"/> so refused calls count too.</summary>
    public static WebApplication UseSurvey6Metrics(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var metrics = app.Services.GetRequiredService<ServerMetrics>();
        app.UseHttpMetrics(options => options.SetMetricFactory(metrics.Factory));
        app.UseMiddleware<GrpcMetricsMiddleware>();
        return app;
    }

    public static WebApplication MapSurvey6Metrics(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        // Probes and load balancers ask without a certificate; ProbeAuthenticationInterceptor lets [AllowAnonymous] endpoints through.
        app.MapGrpcHealthChecksService().AllowAnonymous();

        var options = app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value;
        if (!options.Enabled)
            return app;
        var endpoint = app.MapMetrics(Path, app.Services.GetRequiredService<ServerMetrics>().Registry)
            .WithMetadata(OperatorEndpointMetadata.Instance);
        if (options.RequireToken)
            endpoint.RequireAuthorization(ApiAuthentication.Policy).WithMetadata(ApiEndpointMetadata.Instance);
        return app;
    }
}

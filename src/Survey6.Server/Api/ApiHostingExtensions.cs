using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Survey6.Server.Hosting;

namespace Survey6.Server.Api;

/// <summary>
/// Marks endpoints served on the operator (HTTP) endpoint only: on the probes' gRPC endpoint, which
/// usually faces the Internet, they answer 404.
/// </summary>
public sealed class OperatorEndpointMetadata
{
    public static readonly OperatorEndpointMetadata Instance = new();

    private OperatorEndpointMetadata()
    {
    }
}

/// <summary>Wiring of the operator API (/api/v1): services, middleware and endpoints.</summary>
public static class ApiHostingExtensions
{
    public const string Prefix = "/api/v1";

    public static IServiceCollection AddSurvey6Api(this IServiceCollection services)
    {
        services.AddOptions<ApiOptions>()
            .BindConfiguration(ApiOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => o.DefaultPageSize <= o.MaxPageSize, "Server:Api:DefaultPageSize must not exceed Server:Api:MaxPageSize")
            .ValidateOnStart();
        services.AddSingleton<ApiTokenStore>();
        services.AddSingleton<EventQueries>();
        services.TryAddSingleton<IProbeQueries, StateDbProbeQueries>();
        services.TryAddSingleton<IProbeCommands, StateDbProbeCommands>();
        services.TryAddSingleton<IUploadQueries, CaptureDirectoryUploadQueries>();

        // No default scheme: only endpoints that name a policy authenticate, so gRPC calls never touch the token table.
        services.AddAuthentication().AddScheme<ApiTokenAuthenticationOptions, ApiTokenAuthenticationHandler>(ApiAuthentication.Scheme, null);
        services.AddAuthorization();
        services.AddSingleton<IConfigureOptions<AuthorizationOptions>, ApiPolicySetup>();
        services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, ApiAuthorizationResultHandler>();

        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.TypeInfoResolverChain.Insert(0, ApiJsonContext.Default);
        });
        services.AddSurvey6OpenApi();
        return services;
    }

    /// <summary>
    /// Middleware, in order: operator-only endpoints refused on the gRPC endpoint, Problem Details for
    /// API errors without a body (unknown route, unbindable query, exception), then authentication and
    /// authorization. Call after routing and before the endpoints run (WebApplication adds routing first).
    /// </summary>
    public static WebApplication UseSurvey6Api(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        int? grpcPort = null;
        app.Use((context, next) =>
        {
            // The gRPC endpoint's port is known only once the server is listening (it may be configured as 0).
            grpcPort ??= ServerEndpoints.From(context.RequestServices).GrpcUrl.Port;
            if (context.Connection.LocalPort == grpcPort && context.GetEndpoint()?.Metadata.GetMetadata<OperatorEndpointMetadata>() is not null)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });
        app.UseWhen(
            context => context.Request.Path.StartsWithSegments(Prefix, StringComparison.Ordinal),
            api =>
            {
                api.UseExceptionHandler();
                api.UseStatusCodePages();
            });
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    public static WebApplication MapSurvey6Api(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var api = app.MapGroup(Prefix)
            .RequireAuthorization(ApiAuthentication.Policy)
            .WithMetadata(ApiEndpointMetadata.Instance, OperatorEndpointMetadata.Instance)
            .ProducesProblem(StatusCodes.Status401Unauthorized);
        ApiEndpoints.Map(api);
        app.MapSurvey6OpenApi();
        return app;
    }
}

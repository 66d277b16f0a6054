using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace Survey6.Server.Api;

/// <summary>The OpenAPI document of /api/v1, generated from the endpoints, at /api/v1/openapi.json (a token is needed, like every /api/v1 call).</summary>
internal static class ApiOpenApi
{
    public const string DocumentName = "v1";
    public const string SecuritySchemeName = "bearer";

    public static IServiceCollection AddSurvey6OpenApi(this IServiceCollection services) =>
        services.AddOpenApi(DocumentName, options =>
        {
            options.ShouldInclude = description => description.RelativePath?.StartsWith("api/v1/", StringComparison.Ordinal) == true;
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "survey6 C&C operator API",
                    Version = "v1",
                    Description = "Probes, events, uploads and join tokens. Every call needs Authorization: Bearer s6_... " +
                        "(survey6 server api-token create). Lists are paged with limit and the next_cursor of the previous page.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[SecuritySchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API token: s6_ID_SECRET",
                };
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(SecuritySchemeName, document)] = [] }];
                return Task.CompletedTask;
            });
        });

    public static void MapSurvey6OpenApi(this WebApplication app) =>
        app.MapOpenApi(ApiHostingExtensions.Prefix + "/openapi.json")
            .RequireAuthorization(ApiAuthentication.Policy)
            .WithMetadata(ApiEndpointMetadata.Instance, OperatorEndpointMetadata.Instance);
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using Survey6.Server.Api;
using Survey6.Server.Hosting;
using Survey6.Server.Options;

namespace Survey6.Server.Repository;

/// <summary>What <c>GET /api/v1/repo</c> answers: the packages served and the newest version of each.</summary>
public sealed record AptRepositoryDto(
    string Distribution,
    string Component,
    string? KeyFingerprint,
    string? NewestProbeVersion,
    IReadOnlyDictionary<string, string> Newest,
    IReadOnlyList<AptPackage> Packages);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(AptRepositoryDto))]
public sealed partial class AptRepositoryJsonContext : JsonSerializerContext;

/// <summary>
/// Wiring of the apt repository: its files at <c>/apt/</c> on the operator (HTTP) endpoint,
/// read-only and without authentication (apt clients have no token; the packages are public and
/// the index is signed), and <c>GET /api/v1/repo</c> for operators.
/// </summary>
public static class AptRepositoryHosting
{
    public const string ProbePackage = "survey6-probe";

    public static IServiceCollection AddSurvey6AptRepository(this IServiceCollection services)
    {
        services.AddSingleton(sp => new AptRepository(sp.GetRequiredService<IOptions<ServerOptions>>().Value.DataDirectory));
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.TypeInfoResolverChain.Add(AptRepositoryJsonContext.Default));
        return services;
    }

    /// <summary>Serves the repository's files; call once the data directory exists.</summary>
    public static WebApplication UseSurvey6AptRepository(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var repository = app.Services.GetRequiredService<AptRepository>();
        Directory.CreateDirectory(repository.Root);
        var contentTypes = new FileExtensionContentTypeProvider();
        contentTypes.Mappings[".deb"] = "application/vnd.debian.binary-package";
        contentTypes.Mappings[".asc"] = "application/pgp-keys";
        contentTypes.Mappings[".gpg"] = "application/pgp-signature";
        int? grpcPort = null;
        app.Map(AptRepository.UrlPrefix, apt =>
        {
            apt.Use((context, next) =>
            {
                // Only on the HTTP endpoint; the probes' gRPC endpoint serves nothing but gRPC.
                grpcPort ??= ServerEndpoints.From(context.RequestServices).GrpcUrl.Port;
                if (context.Connection.LocalPort == grpcPort)
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }

                return next(context);
            });
            // GET and HEAD of existing files only (dot files such as the index being built are hidden); no listings.
            apt.UseStaticFiles(new StaticFileOptions
            {
                FileProvider = new PhysicalFileProvider(repository.Root),
                ContentTypeProvider = contentTypes,
                ServeUnknownFileTypes = true,
                DefaultContentType = "application/octet-stream",
            });
            apt.Run(context =>
            {
                context.Response.StatusCode = HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method)
                    ? StatusCodes.Status404NotFound
                    : StatusCodes.Status405MethodNotAllowed;
                return Task.CompletedTask;
            });
        });
        return app;
    }

    public static WebApplication MapSurvey6AptRepository(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(ApiHostingExtensions.Prefix + "/repo", (AptRepository repository) => TypedResults.Ok(Describe(repository)))
            .RequireAuthorization(ApiAuthentication.Policy)
            .WithMetadata(ApiEndpointMetadata.Instance, OperatorEndpointMetadata.Instance)
            .WithName("getAptRepository").WithTags("repository")
            .WithSummary("The packages the apt repository at /apt/ serves and the newest version of each (survey6-probe: newest_probe_version)");
        return app;
    }

    public static AptRepositoryDto Describe(AptRepository repository)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var packages = repository.List();
        var newest = AptRepository.Newest(packages);
        return new AptRepositoryDto(
            AptRepository.Distribution,
            AptRepository.Component,
            repository.Fingerprint,
            newest.GetValueOrDefault(ProbePackage),
            newest,
            packages);
    }
}

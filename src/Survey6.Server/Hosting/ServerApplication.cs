using Microsoft.AspNetCore.Builder;

namespace Survey6.Server.Hosting;

/// <summary>Builds the server host the way <c>survey6 server run</c> does; tests use it too.</summary>
public static class ServerApplication
{
    /// <summary>A server host configured from <see cref="ServerConfiguration"/>'s sources.</summary>
    public static WebApplicationBuilder CreateBuilder(string? configFile = null, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "survey6-server",
            // Not the working directory: an appsettings.json lying there must not configure the server.
            ContentRootPath = AppContext.BaseDirectory,
        });
        ServerConfiguration.Layers(configFile, overrides).AddTo(builder.Configuration);
        builder.AddSurvey6Server();
        return builder;
    }

    public static WebApplication Build(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var app = builder.Build();
        app.MapSurvey6Server();
        return app;
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace Survey6.Server.Hosting;

/// <summary>Builds the server host the way <c>survey6 server run</c> does; tests use it too.</summary>
public static class ServerApplication
{
    private static readonly Dictionary<string, string?> Defaults = new()
    {
        // Request logs are noise for an operator; warnings and errors still show.
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Grpc"] = "Warning",
    };

    /// <summary>
    /// Configuration, lowest precedence first: built-in defaults, environment variables
    /// (<c>Server__DataDirectory</c>, ...), <paramref name="configFile"/> (JSON), then
    /// <paramref name="overrides"/> (command-line options, as <c>Server:DataDirectory</c> keys).
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string? configFile = null, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "survey6-server",
            // Not the working directory: an appsettings.json lying there must not configure the server.
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = Defaults });
        if (configFile is not null)
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        if (overrides is not null)
            builder.Configuration.AddInMemoryCollection(overrides);
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

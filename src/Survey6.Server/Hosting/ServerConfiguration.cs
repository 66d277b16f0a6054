using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Survey6.Server.Options;

namespace Survey6.Server.Hosting;

/// <summary>
/// The server's configuration sources, shared by the running server and the commands that work on
/// its data directory directly, so both agree on where it is. Lowest precedence first: built-in
/// defaults, environment variables (<c>Server__DataDirectory</c>, ...), the JSON file given with
/// <c>--config</c>, then command-line overrides (as <c>Server:DataDirectory</c> keys).
/// </summary>
public static class ServerConfiguration
{
    internal static readonly Dictionary<string, string?> Defaults = new()
    {
        // Request logs are noise for an operator; warnings and errors still show.
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
        ["Logging:LogLevel:Grpc"] = "Warning",
    };

    /// <summary>Adds <paramref name="configFile"/> and <paramref name="overrides"/> on top of what <paramref name="builder"/> has, defaults beneath.</summary>
    public static IConfigurationBuilder AddServerSources(this IConfigurationBuilder builder, string? configFile, IReadOnlyDictionary<string, string?>? overrides)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Sources.Insert(0, new MemoryConfigurationSource { InitialData = Defaults });
        if (configFile is not null)
            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        if (overrides is not null)
            builder.AddInMemoryCollection(overrides);
        return builder;
    }

    /// <summary>The data directory's free-space floor (<see cref="Metrics.DataDiskState.FloorSetting"/>) as the server would see it, for commands that run without it.</summary>
    public static long LoadDiskFloor(string? configFile, IReadOnlyDictionary<string, string?>? overrides)
    {
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddServerSources(configFile, overrides).Build();
        return (configuration.GetSection(Uploads.UploadHostingExtensions.SectionName).Get<Storage.CaptureStoreOptions>() ?? new Storage.CaptureStoreOptions()).MinFreeDiskBytes;
    }

    /// <summary>The <c>Server</c> section as the server would see it, for commands that run without it.</summary>
    public static ServerOptions LoadServerOptions(string? configFile, IReadOnlyDictionary<string, string?>? overrides)
    {
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddServerSources(configFile, overrides).Build();
        return configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
    }
}

using Microsoft.Extensions.Configuration;
using Survey6.Contracts.Configuration;
using Survey6.Server.Options;

namespace Survey6.Server.Hosting;

/// <summary>
/// The server's configuration sources, shared by the running server and the commands that work on
/// its data directory directly, so both agree on where it is. The order is every program's
/// (<see cref="ConfigurationLayers"/>); command-line overrides come as <c>Server:DataDirectory</c> keys.
/// </summary>
public static class ServerConfiguration
{
    internal static readonly Dictionary<string, string?> Defaults = new()
    {
        // Request logs are noise for an operator; warnings and errors still show.
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Grpc"] = "Warning",
    };

    /// <summary>The server's configuration sources: its defaults, /etc/survey6/server.json, <paramref name="configFile"/>, the environment, <paramref name="overrides"/>.</summary>
    public static ConfigurationLayers Layers(string? configFile, IReadOnlyDictionary<string, string?>? overrides) =>
        new("server") { Defaults = Defaults, ConfigFile = configFile, Overrides = overrides };

    /// <summary>The data directory's free-space floor (<see cref="Metrics.DataDiskState.FloorSetting"/>) as the server would see it, for commands that run without it.</summary>
    public static long LoadDiskFloor(string? configFile, IReadOnlyDictionary<string, string?>? overrides)
    {
        var configuration = Layers(configFile, overrides).Build();
        return (configuration.GetSection(Uploads.UploadHostingExtensions.SectionName).Get<Storage.CaptureStoreOptions>() ?? new Storage.CaptureStoreOptions()).MinFreeDiskBytes;
    }

    /// <summary>The <c>Server</c> section as the server would see it, for commands that run without it.</summary>
    public static ServerOptions LoadServerOptions(string? configFile, IReadOnlyDictionary<string, string?>? overrides)
    {
        var configuration = Layers(configFile, overrides).Build();
        return configuration.GetSection(ServerOptions.SectionName).Get<ServerOptions>() ?? new ServerOptions();
    }
}

namespace Survey6.Testbed;

/// <summary>The dotnet muxer this process runs under, for the child processes the lab and the tests start.</summary>
public static class DotnetHost
{
    /// <summary>
    /// <c>DOTNET_HOST_PATH</c> (set by the SDK for <c>dotnet test</c>), else this process when it is the muxer,
    /// else <c>dotnet</c> as found on PATH.
    /// </summary>
    public static string Path
    {
        get
        {
            var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
                return fromSdk;
            var self = Environment.ProcessPath;
            return self is not null && System.IO.Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
        }
    }
}

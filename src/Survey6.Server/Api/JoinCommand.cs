namespace Survey6.Server.Api;

/// <summary>The command an operator runs on a new probe host; printed by the CLI and returned by the API alike.</summary>
public static class JoinCommand
{
    public static string Format(string serverUrl, string token, string caPin) =>
        $"survey6 probe join --server {serverUrl.TrimEnd('/')} --token {token} --ca-hash {caPin}";
}

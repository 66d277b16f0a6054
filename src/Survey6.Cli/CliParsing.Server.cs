namespace Survey6.Cli;

public static partial class CliParsing
{
    /// <summary>"24h", "90m", "7d", "1h30m", "45s"; "0" means no limit (null).</summary>
    public static bool TryParseDuration(string text, out TimeSpan? duration) => Survey6.Server.Api.DurationText.TryParse(text, out duration);
}

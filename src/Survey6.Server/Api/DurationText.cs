using System.Globalization;
using System.Text.RegularExpressions;

namespace Survey6.Server.Api;

/// <summary>
/// Durations as operators type them, shared by the CLI and the API: "24h", "90m", "7d", "1h30m",
/// "45s"; "0" means no limit (null).
/// </summary>
public static partial class DurationText
{
    public static bool TryParse(string? text, out TimeSpan? duration)
    {
        duration = null;
        if (text == "0")
            return true;
        if (text is null)
            return false;
        var match = Shape().Match(text);
        if (!match.Success)
            return false;
        var total = TimeSpan.Zero;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unit = part.Value[^1];
            if (!long.TryParse(part.Value.AsSpan(0, part.Value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 100_000)
                return false;
            total += unit switch
            {
                'd' => TimeSpan.FromDays(n),
                'h' => TimeSpan.FromHours(n),
                'm' => TimeSpan.FromMinutes(n),
                _ => TimeSpan.FromSeconds(n),
            };
        }

        duration = total;
        return total > TimeSpan.Zero;
    }

    [GeneratedRegex("^(?<part>[0-9]+[dhms])+$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}

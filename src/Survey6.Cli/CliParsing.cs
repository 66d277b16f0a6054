using System.Globalization;
using Survey6.Contracts.V1;

namespace Survey6.Cli;

/// <summary>
/// Parsers for option values shared by command groups. This part needs only the contracts, so the
/// probe-only program (src/Survey6.ProbeHost) compiles it too; server-side parsers live in CliParsing.Server.cs.
/// </summary>
public static partial class CliParsing
{
    /// <summary>Repeated <c>key=value</c> options into a dictionary; later keys win.</summary>
    public static bool TryParseLabels(IEnumerable<string>? pairs, out SortedDictionary<string, string> labels, out string? error)
    {
        labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        error = null;
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                error = $"--label '{pair}' is not key=value";
                return false;
            }

            labels[pair[..equals].Trim()] = pair[(equals + 1)..].Trim();
        }

        return true;
    }

    /// <summary><c>lat,lon[,country[,city]]</c>; the city may itself contain commas.</summary>
    public static bool TryParseLocation(string text, out Location? location)
    {
        location = null;
        var parts = text.Split(',', 4, StringSplitOptions.TrimEntries);
        if (parts.Length < 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var latitude) || latitude is < -90 or > 90
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var longitude) || longitude is < -180 or > 180)
            return false;
        location = new Location
        {
            Latitude = latitude,
            Longitude = longitude,
            Country = parts.Length > 2 ? parts[2] : "",
            City = parts.Length > 3 ? parts[3] : "",
        };
        return true;
    }
}

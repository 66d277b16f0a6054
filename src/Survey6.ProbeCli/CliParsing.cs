using System.Globalization;
using Survey6.Contracts.V1;
using Survey6.Packets.Capture;

namespace Survey6.Cli;

/// <summary>
/// Parsers for option values shared by command groups. It needs only the contracts, so the probe-only program
/// (src/Survey6.ProbeHost) has it too; durations go through the server's <c>DurationText</c>, in the server's commands.
/// </summary>
public static class CliParsing
{
    /// <summary>
    /// A count of bytes with an optional binary suffix: 1048576, 512K, 2M, 1G; 0 too (callers that need more say so).
    /// The one parser of sizes for every option that takes one (--rate, --snaplen, --rotate-size, --upload-max-rate).
    /// </summary>
    public static bool TryParseBytes(string text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        text = text.Trim();
        int shift = char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
        var digits = shift == 0 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > long.MaxValue >> shift)
            return false;
        bytes = value << shift;
        return true;
    }

    /// <summary>Longest probe name, city or country text the server keeps.</summary>
    public const int MaxNameLength = 128;

    /// <summary>
    /// Adds <c>--country</c> and <c>--city</c> to a location from <c>--location</c> (or makes one of them alone).
    /// The country must be an assigned ISO 3166-1 alpha-2 code; lower case is accepted and upper-cased. A country
    /// or city given both ways must agree.
    /// </summary>
    public static bool TryMergePlace(Location? location, string? country, string? city, out Location? merged, out string? error)
    {
        merged = location;
        error = null;
        country = country?.Trim();
        city = city?.Trim();
        if (merged is { Country.Length: > 0 })
            merged.Country = merged.Country.ToUpperInvariant();
        if (!string.IsNullOrEmpty(country))
        {
            country = country.ToUpperInvariant();
            if (!Survey6.Contracts.CountryCodes.IsAssigned(country))
            {
                error = $"--country '{country}' is not an ISO 3166-1 alpha-2 code (two letters, e.g. DE, FR, BR)";
                return false;
            }

            if (merged is { Country.Length: > 0 } && merged.Country != country)
            {
                error = $"--country {country} contradicts the country {merged.Country} of --location";
                return false;
            }

            merged ??= new Location();
            merged.Country = country;
        }
        else if (merged is { Country.Length: > 0 } && !Survey6.Contracts.CountryCodes.IsAssigned(merged.Country))
        {
            error = $"the country '{merged.Country}' of --location is not an ISO 3166-1 alpha-2 code";
            return false;
        }

        if (!string.IsNullOrEmpty(city))
        {
            if (city.Length > MaxNameLength)
            {
                error = $"--city is longer than {MaxNameLength} characters";
                return false;
            }

            if (merged is { City.Length: > 0 } && merged.City != city)
            {
                error = $"--city '{city}' contradicts the city '{merged.City}' of --location";
                return false;
            }

            merged ??= new Location();
            merged.City = city;
        }

        return true;
    }

    /// <summary>
    /// <c>lat,lon[,country[,city]]</c>; the city may itself contain commas. Read by the one reader of that form
    /// (<see cref="PcapngMetadata.TryParseLocation"/>); an operator must give both coordinates, within range.
    /// </summary>
    public static bool TryParseLocation(string text, out Location? location)
    {
        location = null;
        if (!PcapngMetadata.TryParseLocation(text, out var latitude, out var longitude, out var country, out var city)
            || latitude is not (>= -90 and <= 90) || longitude is not (>= -180 and <= 180))
            return false;
        location = new Location { Latitude = latitude.Value, Longitude = longitude.Value, Country = country ?? "", City = city ?? "" };
        return true;
    }
}

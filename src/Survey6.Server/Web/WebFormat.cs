using System.Globalization;
using Survey6.Server.Api;
using Survey6.Server.Storage;

namespace Survey6.Server.Web;

/// <summary>How the web pages write times, sizes, rates and places: plain text, which the pages encode.</summary>
internal static class WebFormat
{
    /// <summary>The order the pages list states in: working ones first.</summary>
    public static readonly IReadOnlyList<string> StateOrder =
        [ProbeStates.Healthy, ProbeStates.Degraded, ProbeStates.Suspended, ProbeStates.Pending, ProbeStates.Offline, ProbeStates.Inactive, ProbeStates.Revoked];

    public const int MapWidth = 1000;
    public const int MapHeight = 500;

    /// <summary>Equirectangular: longitude and latitude map linearly to x and y, the same projection site.js draws the land with.</summary>
    public static (double X, double Y) Project(double latitude, double longitude) =>
        ((longitude + 180) / 360 * MapWidth, (90 - latitude) / 180 * MapHeight);

    internal static string I(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    internal static bool HasCoordinates(WebProbe probe) => probe.Location is { Latitude: not null, Longitude: not null };

    internal static string Place(LocationDto? location)
    {
        if (location is null)
            return "";
        var name = string.Join(", ", new[] { location.City, location.Country }.Where(s => !string.IsNullOrEmpty(s)));
        var coordinates = location.Latitude is null || location.Longitude is null ? "" : I($"{location.Latitude:0.##}, {location.Longitude:0.##}");
        return name.Length > 0 ? name : coordinates;
    }

    internal static string Age(TimeSpan? age)
    {
        if (age is not { } a)
            return "never";
        if (a < TimeSpan.Zero)
            a = TimeSpan.Zero;
        return Duration(a) + " ago";
    }

    internal static string Duration(TimeSpan a) =>
        a.TotalSeconds < 60 ? I($"{(int)a.TotalSeconds}s")
        : a.TotalMinutes < 60 ? I($"{(int)a.TotalMinutes}m")
        : a.TotalHours < 48 ? I($"{(int)a.TotalHours}h")
        : I($"{(int)a.TotalDays}d");

    internal static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    internal static string Window(DateTimeOffset start, DateTimeOffset end) =>
        start.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + "–" + end.UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture);

    /// <summary>A capture's SHA-256 as the tables show it: the first 12 hex digits, the whole in the cell's title.</summary>
    internal static string ShortHash(string sha256) => sha256[..Math.Min(12, sha256.Length)];

    internal static string Rate(double perSecond) =>
        perSecond >= 1_000_000 ? I($"{perSecond / 1_000_000:0.##} Mpkt/s")
        : perSecond >= 1_000 ? I($"{perSecond / 1_000:0.##} kpkt/s")
        : I($"{perSecond:0.#} pkt/s");

    internal static string Percent(double ratio) => I($"{ratio * 100:0.##}%");

    internal static string Bytes(long bytes) =>
        bytes >= 1L << 30 ? I($"{bytes / (double)(1L << 30):0.##} GiB")
        : bytes >= 1L << 20 ? I($"{bytes / (double)(1L << 20):0.##} MiB")
        : bytes >= 1L << 10 ? I($"{bytes / (double)(1L << 10):0.#} KiB")
        : I($"{bytes} B");
}

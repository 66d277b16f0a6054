using System.Globalization;

namespace Survey6.Server.Storage;

/// <summary>Times in state.db: fixed-width UTC ISO 8601 text, so it reads well in sqlite3 and sorts as text.</summary>
internal static class DbTime
{
    private const string Format = "yyyy-MM-ddTHH:mm:ss.fffZ";

    public static string ToText(DateTimeOffset value) => value.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture);

    public static DateTimeOffset Parse(string text) =>
        DateTimeOffset.ParseExact(text, Format, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    public static DateTimeOffset? ParseNullable(object value) => value is string text ? Parse(text) : null;
}

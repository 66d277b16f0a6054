using System.Globalization;

namespace Survey6.Ingest;

/// <summary>How both queues write the fields of an item as text.</summary>
internal static class Wire
{
    // "O" keeps ticks and offset, so a dequeued item equals the enqueued one.
    public static string FormatTime(DateTimeOffset value) => value.ToString("O", CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.ParseExact(text, "O", CultureInfo.InvariantCulture, DateTimeStyles.None);

    public static long ParseLong(string text) => long.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture);

    public static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}

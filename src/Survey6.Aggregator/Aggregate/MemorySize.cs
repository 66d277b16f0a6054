using System.Globalization;

namespace Survey6.Aggregator.Aggregate;

/// <summary>Memory sizes as the settings write them: a number and a unit, <c>B</c>, <c>KB</c>/<c>MB</c>/<c>GB</c>/<c>TB</c> (powers of 1000) or <c>KiB</c>/<c>MiB</c>/<c>GiB</c>/<c>TiB</c> (powers of 1024), as DuckDB reads them.</summary>
internal static class MemorySize
{
    private static readonly (string Unit, double Factor)[] Units =
    [
        ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("TiB", 1L << 40),
        ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
    ];

    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var trimmed = text.Trim();
        foreach (var (unit, factor) in Units)
        {
            if (!trimmed.EndsWith(unit, StringComparison.OrdinalIgnoreCase))
                continue;
            if (!double.TryParse(trimmed[..^unit.Length].Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0)
                return false;
            double total = value * factor;
            if (total >= long.MaxValue)
                return false;
            bytes = (long)total;
            return true;
        }
        return false;
    }

    /// <summary>In whole MiB, as DuckDB's <c>memory_limit</c> takes it.</summary>
    public static string ForDuckDb(long bytes) => Math.Max(1, bytes >> 20).ToString(CultureInfo.InvariantCulture) + "MiB";
}

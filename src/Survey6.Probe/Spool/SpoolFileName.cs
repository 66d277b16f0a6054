using System.Globalization;
using System.Text.RegularExpressions;

namespace Survey6.Probe.Spool;

/// <summary>
/// <c>&lt;utc-start&gt;-&lt;seq&gt;.pcapng</c>, e.g. <c>20250101T120000Z-000042.pcapng</c>: sorted by name they are in
/// capture order; the sequence number keeps names unique. <c>.partial</c> is appended while a file
/// is written, and the manifest is <c>&lt;same&gt;.manifest.json</c>.
/// </summary>
public static partial class SpoolFileName
{
    public const string CaptureExtension = ".pcapng";
    public const string PartialSuffix = ".partial";
    public const string ManifestExtension = ".manifest.json";

    public static string Capture(DateTimeOffset start, long sequence) =>
        string.Create(CultureInfo.InvariantCulture, $"{start.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}-{sequence:D6}{CaptureExtension}");

    public static string ManifestFor(string capturePath) =>
        capturePath[..^CaptureExtension.Length] + ManifestExtension;

    /// <summary>Parses a closed capture's name (not a partial).</summary>
    public static bool TryParse(string fileName, out DateTimeOffset start, out long sequence)
    {
        start = default;
        sequence = 0;
        var match = Shape().Match(fileName);
        if (!match.Success
            || !DateTime.TryParseExact(match.Groups["start"].Value, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time)
            || !long.TryParse(match.Groups["seq"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out sequence))
            return false;
        start = new DateTimeOffset(time, TimeSpan.Zero);
        return true;
    }

    [GeneratedRegex(@"^(?<start>[0-9]{8}T[0-9]{6}Z)-(?<seq>[0-9]{1,18})\.pcapng$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}

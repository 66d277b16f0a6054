using System.Globalization;
using System.Text;

namespace Survey6.Packets.Capture;

/// <summary>
/// survey6 metadata encoding in pcapng: one SHB <c>opt_comment</c> per entry, text
/// <c>survey6.&lt;key&gt;=&lt;value&gt;</c>. Comments are chosen over custom options (2988) because every pcapng
/// tool shows and preserves them (capinfos, tshark, editcap, mergecap) and they need no Private Enterprise
/// Number. The key ends at the first '='; the value is the rest and may contain '='.
/// </summary>
public static class PcapngMetadata
{
    public const string Prefix = "survey6.";

    /// <summary>
    /// First SHB comment when metadata is written without a free-form comment. mergecap appends its own text to
    /// the first comment, so that comment must not be a metadata entry.
    /// </summary>
    public const string DefaultSectionComment = "survey6 capture";

    /// <summary>Probe identifier, stable across restarts.</summary>
    public const string ProbeId = "probe_id";

    /// <summary>Host name of the probe machine.</summary>
    public const string Hostname = "hostname";

    /// <summary>survey6 version that wrote the file.</summary>
    public const string Version = "version";

    /// <summary>Operator labels, <c>k=v;k=v</c> (see <see cref="FormatLabels"/>).</summary>
    public const string Labels = "labels";

    /// <summary>Probe location, <c>lat,lon,country,city</c> (see <see cref="FormatLocation"/>).</summary>
    public const string Location = "location";

    /// <summary>When the capture (not this file) started, RFC 3339 UTC with nanoseconds (see <see cref="FormatTimestamp"/>).</summary>
    public const string CaptureStart = "capture_start";

    /// <summary>
    /// ISB comment: drops in the statistics' window that pcapng has no option for, <c>queue=N;disk=N</c>
    /// (see <see cref="FormatDrops"/>).
    /// </summary>
    public const string Drops = "drops";

    /// <summary>ISB comment on the statistics a crash repair adds: where the file was cut and what was discarded.</summary>
    public const string Repaired = "repaired";

    private static readonly string[] TimestampFormats = ["yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK", "yyyy-MM-dd'T'HH:mm:ssK"];

    /// <summary>The comment text for one entry.</summary>
    public static string FormatComment(string key, string value)
    {
        ValidateKey(key);
        ArgumentNullException.ThrowIfNull(value);
        return string.Concat(Prefix, key, "=", value);
    }

    /// <summary>Splits a comment written by <see cref="FormatComment"/>; false for any other comment.</summary>
    public static bool TryParseComment(string comment, out string key, out string value)
    {
        key = value = string.Empty;
        if (comment is null || !comment.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var equals = comment.IndexOf('=', Prefix.Length);
        if (equals <= Prefix.Length)
        {
            return false;
        }

        key = comment[Prefix.Length..equals];
        value = comment[(equals + 1)..];
        return true;
    }

    /// <summary>
    /// Keys: non-empty, no '=', ';', whitespace or control characters, so that both the comment form and the
    /// <c>k=v;k=v</c> label form split unambiguously.
    /// </summary>
    public static void ValidateKey(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        foreach (var c in key)
        {
            if (c is '=' or ';' || char.IsWhiteSpace(c) || char.IsControl(c))
            {
                throw new ArgumentException($"Metadata key '{key}' contains '=', ';', whitespace or a control character.", nameof(key));
            }
        }
    }

    /// <summary><c>k=v;k=v</c>. Label values must not contain ';' (it separates entries); keys follow <see cref="ValidateKey"/>.</summary>
    public static string FormatLabels(IEnumerable<KeyValuePair<string, string>> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var sb = new StringBuilder();
        foreach (var (k, v) in labels)
        {
            ValidateKey(k);
            if (v.Contains(';', StringComparison.Ordinal))
            {
                throw new ArgumentException($"Label value '{v}' contains ';'.", nameof(labels));
            }

            if (sb.Length > 0)
            {
                sb.Append(';');
            }

            sb.Append(k).Append('=').Append(v);
        }

        return sb.ToString();
    }

    /// <summary>
    /// <c>lat,lon,country,city</c> with invariant-culture decimals; country is an ISO 3166-1 alpha-2 code.
    /// City is last so that it may contain commas; empty fields mean unknown.
    /// </summary>
    public static string FormatLocation(double? latitude, double? longitude, string? country, string? city)
    {
        if (country is not null && country.Contains(',', StringComparison.Ordinal))
        {
            throw new ArgumentException("Country must not contain ','.", nameof(country));
        }

        return string.Create(
            CultureInfo.InvariantCulture,
            $"{latitude?.ToString("R", CultureInfo.InvariantCulture)},{longitude?.ToString("R", CultureInfo.InvariantCulture)},{country},{city}");
    }

    /// <summary>RFC 3339 UTC with nine fractional digits, e.g. <c>2024-05-01T12:00:00.123456789Z</c>.</summary>
    public static string FormatTimestamp(long unixNanoseconds)
    {
        var seconds = Math.DivRem(unixNanoseconds, 1_000_000_000L, out var ns);
        if (ns < 0)
        {
            seconds--;
            ns += 1_000_000_000L;
        }

        var t = DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime;
        return string.Create(CultureInfo.InvariantCulture, $"{t:yyyy-MM-dd'T'HH:mm:ss}.{ns:D9}Z");
    }
    /// <summary>
    /// RFC 3339 (as <see cref="FormatTimestamp"/> writes it, or with 0 to 9 fractional digits and any offset) to
    /// nanoseconds since the Unix epoch.
    /// </summary>
    public static bool TryParseTimestamp(string? text, out long unixNanoseconds)
    {
        unixNanoseconds = 0;
        if (text is null)
        {
            return false;
        }

        // DateTimeOffset holds 7 fractional digits: parse without digits 8 and 9, then add them back.
        long extra = 0;
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            var digits = end - dot - 1;
            if (digits is 0 or > 9)
            {
                return false;
            }

            if (digits > 7)
            {
                extra = long.Parse(text.AsSpan(dot + 8, digits - 7), CultureInfo.InvariantCulture) * (digits == 8 ? 10 : 1);
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
        }

        if (!DateTimeOffset.TryParseExact(text, TimestampFormats, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var time))
        {
            return false;
        }

        unixNanoseconds = ((time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100) + extra;
        return true;
    }

    /// <summary>The ISB comment <c>survey6.drops=queue=N;disk=N</c>.</summary>
    public static string FormatDrops(long queueDropped, long diskDropped) =>
        FormatComment(Drops, string.Create(CultureInfo.InvariantCulture, $"queue={queueDropped};disk={diskDropped}"));

    /// <summary>The queue and disk drops of a <see cref="Drops"/> value; null when it is not in that form.</summary>
    public static (long Queue, long Disk)? ParseDrops(string? value)
    {
        long? queue = null, disk = null;
        foreach (var pair in (value ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || !long.TryParse(pair.AsSpan(equals + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                return null;
            }

            switch (pair[..equals])
            {
                case "queue":
                    queue = n;
                    break;
                case "disk":
                    disk = n;
                    break;
            }
        }

        return queue is { } q && disk is { } d ? (q, d) : null;
    }

    /// <summary>The value of the first <c>survey6.KEY=VALUE</c> comment on a statistics block, or null.</summary>
    public static string? CommentValue(InterfaceStatistics statistics, string key)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        foreach (var option in statistics.Options)
        {
            if (option.Code == CaptureOption.Comment && TryParseComment(option.AsString(), out var k, out var v) && k == key)
            {
                return v;
            }
        }

        return null;
    }

    /// <summary>Labels from <c>k=v;k=v</c> (<see cref="FormatLabels"/>), sorted by key; entries without a key are skipped.</summary>
    public static SortedDictionary<string, string> ParseLabels(string? text)
    {
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                labels[entry[..equals]] = entry[(equals + 1)..];
            }
        }

        return labels;
    }

    /// <summary>
    /// Splits <c>lat,lon,country,city</c> (<see cref="FormatLocation"/>); empty fields are null. False when a
    /// latitude or longitude is present but not a number.
    /// </summary>
    public static bool TryParseLocation(string? text, out double? latitude, out double? longitude, out string? country, out string? city)
    {
        latitude = longitude = null;
        country = city = null;
        var parts = (text ?? "").Split(',', 4, StringSplitOptions.TrimEntries);
        if (!TryParseDegrees(parts[0], out latitude) || (parts.Length > 1 && !TryParseDegrees(parts[1], out longitude)))
        {
            return false;
        }

        country = parts.Length > 2 && parts[2].Length > 0 ? parts[2] : null;
        city = parts.Length > 3 && parts[3].Length > 0 ? parts[3] : null;
        return true;

        static bool TryParseDegrees(string part, out double? value)
        {
            value = null;
            if (part.Length == 0)
            {
                return true;
            }

            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || !double.IsFinite(d))
            {
                return false;
            }

            value = d;
            return true;
        }
    }
}

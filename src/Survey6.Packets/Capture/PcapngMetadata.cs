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
}

using System.Globalization;
using System.Text.Json;
using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Manifests;

/// <summary>
/// What the aggregator needs from a stored capture's <c>SHA.manifest.json</c>. The C&amp;C writes what it vouches
/// for at the top level (<c>sha256</c>, <c>probe_id</c>, <c>window_start</c>, <c>window_end</c>, ...) and nests the
/// probe's own manifest as <c>probe_manifest</c>. Top-level fields win; the probe's fields fill in the rest.
/// Reading is lenient (several spellings, objects or strings) because a manifest that cannot be understood must
/// not keep the capture out of the lake: whatever is missing is taken from the capture file itself.
/// </summary>
public sealed record CaptureManifest
{
    public string? Sha256 { get; init; }

    public string? ProbeId { get; init; }

    public string? Hostname { get; init; }

    /// <summary>Operator labels, sorted by key.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Labels { get; init; } = [];

    public double? Latitude { get; init; }

    public double? Longitude { get; init; }

    public string? Country { get; init; }

    public string? City { get; init; }

    public long? WindowStartNs { get; init; }

    public long? WindowEndNs { get; init; }

    public long? ReceivedAtNs { get; init; }

    /// <summary>Frames the probe says it wrote.</summary>
    public long? Frames { get; init; }

    /// <summary>Packets dropped by the interface or driver (pcapng isb_ifdrop).</summary>
    public long? InterfaceDropped { get; init; }

    /// <summary>Packets dropped by the operating system, e.g. a full kernel buffer (pcapng isb_osdrop).</summary>
    public long? OsDropped { get; init; }

    /// <summary>Packets dropped inside the probe before the spool (its bounded channel was full).</summary>
    public long? ProbeDropped { get; init; }

    public string? Interface { get; init; }

    public string? Filter { get; init; }

    public static readonly CaptureManifest Empty = new();

    /// <summary>Labels in the pcapng form <c>k=v;k=v</c>, or null when there are none.</summary>
    public string? LabelsText => Labels.Count == 0 ? null : string.Join(';', Labels.Select(kv => kv.Key + "=" + kv.Value));

    /// <summary>Reads a manifest file; throws <see cref="JsonException"/> or an I/O exception when it cannot.</summary>
    public static CaptureManifest Load(string path) => Parse(File.ReadAllBytes(path));

    public static CaptureManifest Parse(ReadOnlySpan<byte> json)
    {
        using var document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        var top = document.RootElement;
        if (top.ValueKind != JsonValueKind.Object)
            throw new JsonException($"manifest is a JSON {top.ValueKind}, not an object");
        var probe = top.TryGetProperty("probe_manifest", out var nested) && nested.ValueKind == JsonValueKind.Object ? nested : default;
        JsonElement[] scopes = probe.ValueKind == JsonValueKind.Object ? [top, probe] : [top];

        var drops = FindObject(scopes, "drops", "drop_counters", "dropped", "statistics", "stats");
        JsonElement[] dropScopes = drops.ValueKind == JsonValueKind.Object ? [drops, .. scopes] : scopes;
        var iface = FindObject(scopes, "interface");
        var window = FindObject(scopes, "capture_window", "window");
        JsonElement[] windowScopes = window.ValueKind == JsonValueKind.Object ? [.. scopes, window] : scopes;
        var (lat, lon, country, city) = ReadLocation(scopes);

        return new CaptureManifest
        {
            Sha256 = FindString(scopes, "sha256", "sha"),
            ProbeId = FindString(scopes, "probe_id", "probe"),
            Hostname = FindString(scopes, "hostname", "host"),
            Labels = ReadLabels(scopes),
            Latitude = lat,
            Longitude = lon,
            Country = country,
            City = city,
            WindowStartNs = FindTime(windowScopes, "window_start", "capture_start", "start"),
            WindowEndNs = FindTime(windowScopes, "window_end", "capture_end", "end"),
            ReceivedAtNs = FindTime(scopes, "received_at"),
            Frames = FindLong(scopes, "frames", "frame_count", "packets", "packet_count"),
            InterfaceDropped = FindLong(dropScopes, "if_dropped", "interface_dropped", "ifdrop", "isb_ifdrop", "if_drop"),
            OsDropped = FindLong(dropScopes, "os_dropped", "osdrop", "isb_osdrop", "os_drop", "kernel_dropped"),
            ProbeDropped = FindLong(dropScopes, "probe_dropped", "channel_dropped", "spool_dropped", "user_dropped"),
            Interface = iface.ValueKind == JsonValueKind.Object ? FindString([iface], "name") : FindString(scopes, "interface", "interface_name"),
            Filter = FindString(iface.ValueKind == JsonValueKind.Object ? [iface, .. scopes] : scopes, "filter", "bpf_filter", "capture_filter"),
        };
    }

    /// <summary>Fills what the manifest lacks from the pcapng section's survey6 metadata comments.</summary>
    public CaptureManifest WithSectionMetadata(CaptureSection? section)
    {
        if (section is null)
            return this;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var comment in section.Comments)
        {
            if (PcapngMetadata.TryParseComment(comment, out var key, out var value))
                metadata.TryAdd(key, value);
        }
        var result = this;
        if (result.ProbeId is null && metadata.TryGetValue(PcapngMetadata.ProbeId, out var probeId))
            result = result with { ProbeId = probeId };
        if (result.Hostname is null && metadata.TryGetValue(PcapngMetadata.Hostname, out var host))
            result = result with { Hostname = host };
        if (result.Labels.Count == 0 && metadata.TryGetValue(PcapngMetadata.Labels, out var labels))
            result = result with { Labels = ParseLabelText(labels) };
        if (result.Latitude is null && result.Longitude is null && result.Country is null && result.City is null
            && metadata.TryGetValue(PcapngMetadata.Location, out var location))
        {
            var (lat, lon, country, city) = ParseLocationText(location);
            result = result with { Latitude = lat, Longitude = lon, Country = country, City = city };
        }
        if (result.WindowStartNs is null && metadata.TryGetValue(PcapngMetadata.CaptureStart, out var start) && TryParseTime(start, out var ns))
            result = result with { WindowStartNs = ns };
        return result;
    }

    public static IReadOnlyList<KeyValuePair<string, string>> ParseLabelText(string text)
    {
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                labels[entry[..eq]] = entry[(eq + 1)..];
        }
        return [.. labels];
    }

    public static (double? Lat, double? Lon, string? Country, string? City) ParseLocationText(string text)
    {
        // lat,lon,country,city with the city last so that it may contain commas (docs/pcapng-metadata.md).
        var parts = text.Split(',', 4);
        return (
            parts.Length > 0 ? ParseDouble(parts[0]) : null,
            parts.Length > 1 ? ParseDouble(parts[1]) : null,
            parts.Length > 2 ? NullIfEmpty(parts[2]) : null,
            parts.Length > 3 ? NullIfEmpty(parts[3]) : null);
    }

    private static IReadOnlyList<KeyValuePair<string, string>> ReadLabels(JsonElement[] scopes)
    {
        foreach (var scope in scopes)
        {
            if (!scope.TryGetProperty("labels", out var labels))
                continue;
            if (labels.ValueKind == JsonValueKind.String)
                return ParseLabelText(labels.GetString()!);
            if (labels.ValueKind == JsonValueKind.Object)
            {
                var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
                foreach (var p in labels.EnumerateObject())
                    sorted[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
                return [.. sorted];
            }
        }
        return [];
    }

    private static (double?, double?, string?, string?) ReadLocation(JsonElement[] scopes)
    {
        foreach (var scope in scopes)
        {
            if (!scope.TryGetProperty("location", out var location))
                continue;
            if (location.ValueKind == JsonValueKind.String)
                return ParseLocationText(location.GetString()!);
            if (location.ValueKind == JsonValueKind.Object)
            {
                JsonElement[] l = [location];
                return (FindDouble(l, "latitude", "lat"), FindDouble(l, "longitude", "lon", "lng"), FindString(l, "country", "country_code"), FindString(l, "city"));
            }
        }
        return (null, null, null, null);
    }

    private static JsonElement FindObject(JsonElement[] scopes, params string[] names)
    {
        foreach (var scope in scopes)
        {
            foreach (var name in names)
            {
                if (scope.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object)
                    return value;
            }
        }
        return default;
    }

    private static string? FindString(JsonElement[] scopes, params string[] names)
    {
        foreach (var scope in scopes)
        {
            foreach (var name in names)
            {
                if (scope.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } s)
                    return s;
            }
        }
        return null;
    }

    private static long? FindLong(JsonElement[] scopes, params string[] names)
    {
        foreach (var scope in scopes)
        {
            foreach (var name in names)
            {
                if (!scope.TryGetProperty(name, out var value))
                    continue;
                if (value.ValueKind == JsonValueKind.Number)
                {
                    if (value.TryGetInt64(out var l))
                        return l;
                    if (value.TryGetUInt64(out _))
                        return long.MaxValue;
                }
                if (value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
                    return parsed;
            }
        }
        return null;
    }

    private static double? FindDouble(JsonElement[] scopes, params string[] names)
    {
        foreach (var scope in scopes)
        {
            foreach (var name in names)
            {
                if (!scope.TryGetProperty(name, out var value))
                    continue;
                if (value.ValueKind == JsonValueKind.Number)
                    return value.GetDouble();
                if (value.ValueKind == JsonValueKind.String)
                    return ParseDouble(value.GetString());
            }
        }
        return null;
    }

    private static long? FindTime(JsonElement[] scopes, params string[] names)
    {
        foreach (var scope in scopes)
        {
            foreach (var name in names)
            {
                if (!scope.TryGetProperty(name, out var value))
                    continue;
                // Numbers are taken as nanoseconds since the epoch; strings as RFC 3339.
                if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var ns))
                    return ns;
                if (value.ValueKind == JsonValueKind.String && TryParseTime(value.GetString()!, out var parsed))
                    return parsed;
            }
        }
        return null;
    }

    /// <summary>RFC 3339 to nanoseconds since the epoch, keeping fractional digits beyond .NET's 100 ns ticks.</summary>
    public static bool TryParseTime(string text, out long nanoseconds)
    {
        nanoseconds = 0;
        // Ticks hold 7 fractional digits: parse without digits 8 and 9, then add them back.
        int extra = 0, extraDigits = 0;
        int dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            int end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
                end++;
            if (end - dot - 1 > 7)
            {
                var tail = text.AsSpan(dot + 8, end - dot - 8);
                extraDigits = Math.Min(2, tail.Length);
                extra = int.Parse(tail[..extraDigits], CultureInfo.InvariantCulture);
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
        }
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            return false;
        nanoseconds = ((t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100) + (extraDigits == 1 ? extra * 10 : extra);
        return true;
    }

    private static double? ParseDouble(string? text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}

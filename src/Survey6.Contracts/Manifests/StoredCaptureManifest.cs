using System.Text.Json;
using System.Text.Json.Serialization;
using Survey6.Packets.Capture;

namespace Survey6.Contracts.Manifests;

/// <summary>
/// The server's manifest beside each stored capture (<c>captures/PROBE/DATE/SHA.manifest.json</c>): what the server
/// vouches for, with the probe's <see cref="CaptureManifest"/> kept whole as <c>probe_manifest</c>. The two never mix,
/// so no probe field can override a server field: the probe id comes from the certificate, labels and location from
/// the server's record of the probe (state.db) when the capture arrived.
/// <para>
/// Version 2 added <c>server_manifest_version</c>, <c>labels</c> and <c>location</c>. Version 1 (no version field)
/// is what servers wrote before; it is read as it is, and its <c>probe_manifest</c>, which was not checked then,
/// may be anything: <see cref="ProbeManifest"/> is null and <see cref="ProbeManifestProblem"/> says why when it is
/// not a <see cref="CaptureManifest"/>.
/// </para>
/// </summary>
public sealed record StoredCaptureManifest
{
    /// <summary>The version this code writes and the newest it reads.</summary>
    public const int CurrentVersion = 2;

    /// <summary>Absent (null) in manifests of servers before version 2; <see cref="Version"/> reads that as 1.</summary>
    public int? ServerManifestVersion { get; init; }

    /// <summary>The version of this manifest's shape.</summary>
    [JsonIgnore]
    public int Version => ServerManifestVersion ?? 1;

    public required string Sha256 { get; init; }

    /// <summary>The probe, from its client certificate.</summary>
    public required string ProbeId { get; init; }

    public required long Size { get; init; }

    /// <summary><c>pcap</c> or <c>pcapng</c>, as the server read it.</summary>
    public string? Format { get; init; }

    /// <summary>The capture window the upload header declared; its start's UTC date names the folder.</summary>
    [JsonPropertyName("window_start")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public required long? WindowStartNs { get; init; }

    [JsonPropertyName("window_end")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public required long? WindowEndNs { get; init; }

    /// <summary>When the server stored it.</summary>
    [JsonPropertyName("received_at")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public required long? ReceivedAtNs { get; init; }

    [JsonIgnore]
    public DateTimeOffset? WindowStart => Time(WindowStartNs);

    [JsonIgnore]
    public DateTimeOffset? WindowEnd => Time(WindowEndNs);

    [JsonIgnore]
    public DateTimeOffset? ReceivedAt => Time(ReceivedAtNs);

    /// <summary>The probe's labels in state.db when the capture arrived (version 2; null in version 1).</summary>
    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    /// <summary>The probe's location in state.db when the capture arrived; null when none is known.</summary>
    public ProbeLocation? Location { get; init; }

    /// <summary>The probe's manifest exactly as it was sent; null when the upload carried none.</summary>
    [JsonPropertyName("probe_manifest")]
    public JsonElement? ProbeManifestJson { get; init; }

    /// <summary><see cref="ProbeManifestJson"/> read as a <see cref="CaptureManifest"/>; null when absent or (version 1 only) unreadable.</summary>
    [JsonIgnore]
    public CaptureManifest? ProbeManifest { get; init; }

    /// <summary>Why a version 1 <c>probe_manifest</c> could not be read; null otherwise.</summary>
    [JsonIgnore]
    public string? ProbeManifestProblem { get; init; }

    /// <summary>Builds the current version around a manifest the upload carried (checked at upload) or none.</summary>
    public static StoredCaptureManifest Create(
        string sha256, string probeId, long size, string format, long windowStartNs, long windowEndNs, long receivedAtNs,
        IReadOnlyDictionary<string, string> labels, ProbeLocation? location, string? probeManifestJson)
    {
        JsonElement? probe = null;
        CaptureManifest? parsed = null;
        if (!string.IsNullOrWhiteSpace(probeManifestJson))
        {
            parsed = CaptureManifest.Parse(probeManifestJson);
            using var document = JsonDocument.Parse(probeManifestJson);
            probe = document.RootElement.Clone();
        }

        return new StoredCaptureManifest
        {
            ServerManifestVersion = CurrentVersion,
            Sha256 = sha256,
            ProbeId = probeId,
            Size = size,
            Format = format,
            WindowStartNs = windowStartNs,
            WindowEndNs = windowEndNs,
            ReceivedAtNs = receivedAtNs,
            Labels = new SortedDictionary<string, string>(labels.ToDictionary(), StringComparer.Ordinal),
            Location = location,
            ProbeManifestJson = probe,
            ProbeManifest = parsed,
        };
    }

    /// <summary>Reads a stored manifest of any version.</summary>
    /// <exception cref="ManifestException">It is not one: not JSON, a required field missing or mistyped, an unknown version, or (version 2) a probe manifest that is not valid.</exception>
    public static StoredCaptureManifest Parse(ReadOnlySpan<byte> utf8Json)
    {
        var stored = ManifestJson.Deserialize(utf8Json, ManifestJsonContext.Default.StoredCaptureManifest);
        if (stored.Version is < 1 or > CurrentVersion)
            throw new ManifestException($"server_manifest_version {stored.ServerManifestVersion} is not one this reader knows (1 to {CurrentVersion})");
        if (stored.ProbeManifestJson is not { ValueKind: not JsonValueKind.Null } probe)
            return stored with { ProbeManifestJson = null };
        try
        {
            return stored with { ProbeManifest = CaptureManifest.Parse(probe) };
        }
        catch (ManifestException e) when (stored.Version == 1)
        {
            return stored with { ProbeManifestProblem = "probe_manifest: " + e.Message };
        }
        catch (ManifestException e)
        {
            throw new ManifestException("probe_manifest: " + e.Message, e);
        }
    }

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="ManifestException">See <see cref="Parse(ReadOnlySpan{byte})"/>.</exception>
    /// <exception cref="IOException">It cannot be read.</exception>
    public static StoredCaptureManifest Load(string path) => Parse(File.ReadAllBytes(path));

    /// <summary>Indented UTF-8 JSON, ending with a newline.</summary>
    public byte[] ToUtf8Json() => ManifestJson.Serialize(this, ManifestJsonContext.Default.StoredCaptureManifest);

    /// <summary>Nanoseconds since the epoch as a time, to .NET's 100 ns.</summary>
    private static DateTimeOffset? Time(long? unixNanoseconds) =>
        unixNanoseconds is { } ns ? DateTimeOffset.UnixEpoch.AddTicks(ns / 100) : null;
}

/// <summary>Where a probe is, as the server knows it (all parts optional).</summary>
public sealed record ProbeLocation(double? Latitude, double? Longitude, string? Country, string? City)
{
    /// <summary>The pcapng metadata form, <c>lat,lon,country,city</c>; null when it is empty or malformed.</summary>
    public static ProbeLocation? FromPcapngText(string? text) =>
        PcapngMetadata.TryParseLocation(text, out var latitude, out var longitude, out var country, out var city)
        && (latitude ?? longitude ?? (object?)country ?? city) is not null
            ? new ProbeLocation(latitude, longitude, country, city)
            : null;
}

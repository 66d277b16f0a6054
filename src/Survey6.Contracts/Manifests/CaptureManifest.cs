using System.Text.Json;
using System.Text.Json.Serialization;

namespace Survey6.Contracts.Manifests;

/// <summary>
/// The probe's manifest of one capture file (docs/protocol.md, "Capture manifest"): written beside each closed spool
/// file as <c>NAME.manifest.json</c>, sent with its upload, kept whole by the server inside its
/// <see cref="StoredCaptureManifest"/>, read by the aggregator. The probe builds it by reading the closed file back,
/// so it describes exactly the bytes that were hashed.
/// <para>
/// Times are RFC 3339 UTC with nine fractional digits in JSON and nanoseconds since the Unix epoch here. Counters are
/// null when unknown (a file repaired after a crash). Readers ignore fields they do not know, so a field can be added
/// without a new <see cref="ManifestVersion"/>; a change of meaning needs one, and older readers refuse it.
/// </para>
/// </summary>
public sealed record CaptureManifest
{
    /// <summary>The version this code writes and the newest it reads.</summary>
    public const int CurrentVersion = 1;

    private static readonly IReadOnlyDictionary<string, string> NoLabels = new Dictionary<string, string>();

    // The serializer sets every init property, absent ones to null; an absent "labels" means none.
    private readonly IReadOnlyDictionary<string, string>? _labels;

    public required int ManifestVersion { get; init; }

    /// <summary>The file's name (in the spool, or as uploaded).</summary>
    public required string File { get; init; }

    /// <summary>Lower-case hex SHA-256 of the whole file; the upload's name must be the same.</summary>
    public required string Sha256 { get; init; }

    /// <summary>File size in bytes; the upload's declared size must be the same.</summary>
    public required long Size { get; init; }

    /// <summary>The spool's file number; null for a file the spool did not write (<c>survey6 probe upload FILE</c>).</summary>
    public long? Sequence { get; init; }

    /// <summary>The probe id the file claims (SHB metadata). The server's, from the certificate, always wins.</summary>
    public string? ProbeId { get; init; }

    public string? Hostname { get; init; }

    /// <summary>survey6 version that wrote the file.</summary>
    public string? Version { get; init; }

    /// <summary>Labels the file claims (SHB metadata); the server stamps its own.</summary>
    public IReadOnlyDictionary<string, string> Labels
    {
        get => _labels ?? NoLabels;
        init => _labels = value;
    }

    /// <summary>Location the file claims, <c>lat,lon,country,city</c> (SHB metadata); the server stamps its own.</summary>
    public string? Location { get; init; }

    /// <summary>When the capture run (not this file) started.</summary>
    [JsonPropertyName("capture_start")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public long? CaptureStartNs { get; init; }

    /// <summary>Start of the window the counters cover (ISB start time), else the first frame's time; null for a file without either.</summary>
    [JsonPropertyName("window_start")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public required long? WindowStartNs { get; init; }

    [JsonPropertyName("window_end")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public required long? WindowEndNs { get; init; }

    [JsonPropertyName("first_frame")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public long? FirstFrameNs { get; init; }

    [JsonPropertyName("last_frame")]
    [JsonConverter(typeof(UnixNanosecondsJsonConverter))]
    public long? LastFrameNs { get; init; }

    /// <summary>Packets in the file.</summary>
    public required long Frames { get; init; }

    /// <summary>Interface names, comma-separated.</summary>
    public string? Interface { get; init; }

    /// <summary>The capture filter in force (the first interface's).</summary>
    public string? Filter { get; init; }

    public long? Snaplen { get; init; }

    /// <summary>pcap's received count over the window, summed over interfaces.</summary>
    public long? Received { get; init; }

    /// <summary>Frames lost over the window, by where they were lost, summed over interfaces.</summary>
    public required ManifestDrops Drops { get; init; }

    /// <summary>Why the spool closed the file: size, age, stop, suspend, requested, disk-guard, error, repaired, policy, unknown; null when the spool did not write it.</summary>
    public string? CloseReason { get; init; }

    public bool Repaired { get; init; }

    /// <summary>Damage found while reading the file back (never expected for a file the probe closed).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Damage { get; init; }

    public required IReadOnlyList<ManifestInterface> Interfaces { get; init; }

    /// <summary>Reads and checks a manifest.</summary>
    /// <exception cref="ManifestException">Not JSON, a required field missing or of the wrong type, a version this code does not know, or a value out of range.</exception>
    public static CaptureManifest Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return Checked(ManifestJson.Deserialize(json, ManifestJsonContext.Default.CaptureManifest));
    }

    /// <inheritdoc cref="Parse(string)"/>
    public static CaptureManifest Parse(ReadOnlySpan<byte> utf8Json) =>
        Checked(ManifestJson.Deserialize(utf8Json, ManifestJsonContext.Default.CaptureManifest));

    /// <inheritdoc cref="Parse(string)"/>
    public static CaptureManifest Parse(JsonElement element) =>
        Checked(ManifestJson.Deserialize(element, ManifestJsonContext.Default.CaptureManifest));

    /// <summary>Indented UTF-8 JSON, ending with a newline.</summary>
    public byte[] ToUtf8Json() => ManifestJson.Serialize(this, ManifestJsonContext.Default.CaptureManifest);

    public string ToJson() => System.Text.Encoding.UTF8.GetString(ToUtf8Json());

    private static CaptureManifest Checked(CaptureManifest manifest)
    {
        var problem = manifest.ManifestVersion is < 1 or > CurrentVersion
            ? $"manifest_version {manifest.ManifestVersion} is not one this reader knows (1 to {CurrentVersion})"
            : !ManifestJson.IsSha256(manifest.Sha256) ? $"field 'sha256' is not 64 hexadecimal digits"
            : manifest.Size < 0 ? "field 'size' is negative"
            : manifest.Frames < 0 ? "field 'frames' is negative"
            : manifest.WindowEndNs < manifest.WindowStartNs ? "field 'window_end' is before 'window_start'"
            : manifest.Drops.Problem() ?? manifest.Interfaces.Select((i, n) => i.Problem(n)).FirstOrDefault(p => p is not null);
        return problem is null ? manifest : throw new ManifestException(ManifestJson.Refusal(CurrentVersion, problem));
    }
}

/// <summary>Frames lost before they reached the file, by stage; null when unknown.</summary>
public sealed record ManifestDrops
{
    /// <summary>The kernel's capture buffer was full (pcap ps_drop, pcapng isb_osdrop).</summary>
    public required long? Kernel { get; init; }

    /// <summary>The interface or its driver dropped them (pcap ps_ifdrop, pcapng isb_ifdrop).</summary>
    public required long? Interface { get; init; }

    /// <summary>The probe's queue to the spool writer was full.</summary>
    public required long? Queue { get; init; }

    /// <summary>The disk guard discarded them (spool full, pause-capture).</summary>
    public required long? Disk { get; init; }

    internal string? Problem(string prefix = "drops") =>
        Kernel < 0 ? $"field '{prefix}.kernel' is negative"
        : Interface < 0 ? $"field '{prefix}.interface' is negative"
        : Queue < 0 ? $"field '{prefix}.queue' is negative"
        : Disk < 0 ? $"field '{prefix}.disk' is negative"
        : null;
}

/// <summary>One capture interface (IDB) of the file with its counters over the window (its last ISB).</summary>
public sealed record ManifestInterface
{
    /// <summary>The pcapng interface id.</summary>
    public required int Id { get; init; }

    public string? Name { get; init; }

    /// <summary>LINKTYPE_* value.</summary>
    public int LinkType { get; init; }

    public long Snaplen { get; init; }

    public string? Filter { get; init; }

    /// <summary>Packets of this interface in the file.</summary>
    public required long Frames { get; init; }

    public long? Received { get; init; }

    public long? KernelDropped { get; init; }

    public long? InterfaceDropped { get; init; }

    public long? QueueDropped { get; init; }

    public long? DiskDropped { get; init; }

    internal string? Problem(int index)
    {
        var at = $"interfaces[{index}]";
        return Frames < 0 ? $"field '{at}.frames' is negative"
            : KernelDropped < 0 || InterfaceDropped < 0 || QueueDropped < 0 || DiskDropped < 0 ? $"a drop counter of '{at}' is negative"
            : null;
    }
}

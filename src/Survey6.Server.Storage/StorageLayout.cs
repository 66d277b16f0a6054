using Survey6.Data;
using Survey6.Packets.Files;

namespace Survey6.Server.Storage;

/// <summary>
/// Names on disk below the folders <see cref="DataLayout"/> names. Stored: <c>DATA/captures/PROBE/YYYY-MM-DD/SHA.{pcapng,manifest.json,queued}</c>;
/// in progress: <c>DATA/incoming/PROBE/SHA.{part,meta}</c>. Every other name under these folders is ignored.
/// </summary>
internal sealed class StorageLayout
{
    public const string CaptureSuffix = DataLayout.CaptureSuffix;
    public const string ManifestSuffix = DataLayout.CaptureManifestSuffix;
    public const string QueuedSuffix = ".queued";
    public const string PartSuffix = ".part";
    public const string MetaSuffix = ".meta";
    /// <summary>What <see cref="DurableFiles.WriteAtomically"/> leaves beside its target when a crash cuts it short.</summary>
    public const string TempSuffix = DurableFiles.TempSuffix;
    public const int ShaLength = 64;
    public const int MaxProbeIdLength = DataLayout.MaxProbeIdLength;
    private readonly DataLayout _layout;

    public StorageLayout(string dataDirectory)
    {
        var layout = _layout = new DataLayout(dataDirectory);
        Root = layout.Root;
        Captures = layout.Captures;
        Incoming = layout.Incoming;
    }

    public string Root { get; }

    public string Captures { get; }

    public string Incoming { get; }

    public string ProbeCaptures(string probeId) => Path.Combine(Captures, probeId);

    public string ProbeIncoming(string probeId) => Path.Combine(Incoming, probeId);

    public string DateDirectory(string probeId, DateTimeOffset windowStart) =>
        _layout.CaptureDirectory(probeId, DateOnly.FromDateTime(windowStart.UtcDateTime));

    public string PartPath(string probeId, string sha) => Path.Combine(ProbeIncoming(probeId), sha + PartSuffix);

    public string MetaPath(string probeId, string sha) => Path.Combine(ProbeIncoming(probeId), sha + MetaSuffix);

    public static string CapturePath(string dateDirectory, string sha) => Path.Combine(dateDirectory, sha + CaptureSuffix);

    public static string ManifestPath(string dateDirectory, string sha) => Path.Combine(dateDirectory, sha + ManifestSuffix);

    public static string QueuedPath(string dateDirectory, string sha) => Path.Combine(dateDirectory, sha + QueuedSuffix);

    /// <summary>The date folder holding the stored capture, or null. Looks in every date: the window a probe declares may change between attempts.</summary>
    public string? FindStored(string probeId, string sha)
    {
        foreach (var dateDirectory in DateDirectories(probeId))
        {
            if (File.Exists(CapturePath(dateDirectory, sha)))
                return dateDirectory;
        }
        return null;
    }

    public IEnumerable<string> DateDirectories(string probeId)
    {
        var probeDirectory = ProbeCaptures(probeId);
        if (!Directory.Exists(probeDirectory))
            return [];
        return Directory.EnumerateDirectories(probeDirectory)
            .Where(d => DataLayout.TryParseDateFolder(Path.GetFileName(d), out _));
    }

    /// <summary>Probe folders under <paramref name="parent"/> whose names are valid probe ids.</summary>
    public static IEnumerable<string> ProbeDirectories(string parent) =>
        Directory.Exists(parent) ? Directory.EnumerateDirectories(parent).Where(d => IsValidProbeId(Path.GetFileName(d))) : [];

    /// <inheritdoc cref="DataLayout.IsValidProbeId"/>
    public static bool IsValidProbeId(string? probeId) => DataLayout.IsValidProbeId(probeId);

    /// <summary>Lower-case form of a 64-digit hex SHA-256, or null when it is not one.</summary>
    public static string? NormalizeSha(string? sha)
    {
        if (sha is null || sha.Length != ShaLength)
            return null;
        foreach (var c in sha)
        {
            if (!char.IsAsciiHexDigit(c))
                return null;
        }
        return sha.ToLowerInvariant();
    }

    /// <summary>The SHA a store file name starts with (as the store writes it, lower case), or null for foreign names.</summary>
    public static string? ShaOfFileName(string fileName)
    {
        if (fileName.Length <= ShaLength || fileName[ShaLength] != '.')
            return null;
        var prefix = fileName[..ShaLength];
        return NormalizeSha(prefix) == prefix ? prefix : null;
    }
}

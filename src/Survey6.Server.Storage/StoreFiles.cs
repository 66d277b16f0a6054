using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Survey6.Contracts.Manifests;

namespace Survey6.Server.Storage;

/// <summary>
/// The <c>.meta</c> beside a partial upload: the header it was begun with, so the declared size survives a
/// restart (it reserves quota and bounds writes) and the manifest can be written when the upload completes.
/// </summary>
internal sealed record IncomingMeta(
    string Sha256, long Size, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, string ManifestJson, DateTimeOffset Began);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(IncomingMeta))]
internal sealed partial class StorageJsonContext : JsonSerializerContext;

/// <summary>Reads and writes the store's small JSON files.</summary>
internal static class StoreFiles
{
    public static byte[] SerializeMeta(IncomingMeta meta) => JsonSerializer.SerializeToUtf8Bytes(meta, StorageJsonContext.Default.IncomingMeta);

    /// <summary>The meta file's content, or null when it is missing or unreadable (a crash cannot leave it torn, but a person can).</summary>
    public static IncomingMeta? ReadMeta(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), StorageJsonContext.Default.IncomingMeta);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The server's manifest (<see cref="StoredCaptureManifest"/>): what the server vouches for (name, probe from its
    /// certificate, its labels and location, size, format, when it arrived) with the probe's own manifest kept whole
    /// beside them, so no probe field can override them.
    /// </summary>
    public static byte[] FormatManifest(
        string probeId, string sha, long size, string format, IncomingMeta meta, DateTimeOffset receivedAt, ProbeAnnotation? probe) =>
        StoredCaptureManifest.Create(sha, probeId, size, format, Nanoseconds(meta.WindowStart), Nanoseconds(meta.WindowEnd), Nanoseconds(receivedAt),
            probe?.Labels ?? new Dictionary<string, string>(), probe?.Location, meta.ManifestJson).ToUtf8Json();

    /// <summary>Null when the probe's manifest is acceptable (a valid capture manifest of this capture, or none), else why not.</summary>
    public static string? CheckProbeManifest(string? manifestJson, long maxBytes, string sha, long size)
    {
        if (string.IsNullOrWhiteSpace(manifestJson))
            return null;
        int bytes = Encoding.UTF8.GetByteCount(manifestJson);
        if (bytes > maxBytes)
            return $"manifest of {bytes} bytes exceeds the limit of {maxBytes}";
        CaptureManifest manifest;
        try
        {
            manifest = CaptureManifest.Parse(manifestJson);
        }
        catch (ManifestException e)
        {
            return e.Message;
        }

        if (!string.Equals(manifest.Sha256, sha, StringComparison.OrdinalIgnoreCase))
            return $"the manifest describes the file {manifest.Sha256}, not this upload ({sha})";
        return manifest.Size != size ? $"the manifest describes a file of {manifest.Size} bytes, the upload declares {size}" : null;
    }

    private static long Nanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
}

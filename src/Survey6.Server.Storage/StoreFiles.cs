using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

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
    /// The server's manifest: what the server vouches for (name, probe from its certificate, size, format, when it
    /// arrived) with the probe's own manifest nested as <c>probe_manifest</c>, so no probe field can override them.
    /// </summary>
    public static byte[] FormatManifest(
        string probeId, string sha, long size, string format, IncomingMeta meta, DateTimeOffset receivedAt)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("sha256", sha);
            writer.WriteString("probe_id", probeId);
            writer.WriteNumber("size", size);
            writer.WriteString("format", format);
            writer.WriteString("window_start", meta.WindowStart.ToUniversalTime());
            writer.WriteString("window_end", meta.WindowEnd.ToUniversalTime());
            writer.WriteString("received_at", receivedAt.ToUniversalTime());
            writer.WritePropertyName("probe_manifest");
            if (string.IsNullOrWhiteSpace(meta.ManifestJson))
            {
                writer.WriteNullValue();
            }
            else
            {
                using var document = JsonDocument.Parse(meta.ManifestJson);
                document.RootElement.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>Null when the probe's manifest is acceptable, else why not.</summary>
    public static string? CheckProbeManifest(string? manifestJson, long maxBytes)
    {
        if (string.IsNullOrWhiteSpace(manifestJson))
            return null;
        int bytes = Encoding.UTF8.GetByteCount(manifestJson);
        if (bytes > maxBytes)
            return $"manifest of {bytes} bytes exceeds the limit of {maxBytes}";
        try
        {
            using var document = JsonDocument.Parse(manifestJson);
            return document.RootElement.ValueKind == JsonValueKind.Object ? null : $"manifest is a JSON {document.RootElement.ValueKind}, not an object";
        }
        catch (JsonException e)
        {
            return $"manifest is not valid JSON: {e.Message}";
        }
    }
}

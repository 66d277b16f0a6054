using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Survey6.Packets.Capture;

namespace Survey6.Contracts.Manifests;

/// <summary>A manifest that is not one: the message says what is wrong, for the probe, the CLI and the logs.</summary>
public sealed class ManifestException : Exception
{
    public ManifestException()
    {
    }

    public ManifestException(string message)
        : base(message)
    {
    }

    public ManifestException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    RespectNullableAnnotations = true,
    WriteIndented = true)]
[JsonSerializable(typeof(CaptureManifest))]
[JsonSerializable(typeof(StoredCaptureManifest))]
internal sealed partial class ManifestJsonContext : JsonSerializerContext;

/// <summary>Reading and writing with <see cref="ManifestJsonContext"/>, and turning the serializer's errors into sentences.</summary>
internal static class ManifestJson
{
    private const string MissingRequired = "missing required properties including: ";
    private const string CannotConvert = "The JSON value could not be converted to ";

    // Read by people and parsers, never embedded in HTML: keep '+' in versions and non-ASCII city names as they are.
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static T Deserialize<T>(string json, JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ManifestException(Refusal(type, "it is null, not an object"));
        }
        catch (JsonException e)
        {
            throw new ManifestException(Refusal(type, Describe(type, e)), e);
        }
    }

    public static T Deserialize<T>(ReadOnlySpan<byte> json, JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new ManifestException(Refusal(type, "it is null, not an object"));
        }
        catch (JsonException e)
        {
            throw new ManifestException(Refusal(type, Describe(type, e)), e);
        }
    }

    public static T Deserialize<T>(JsonElement json, JsonTypeInfo<T> type)
    {
        try
        {
            return json.Deserialize(type) ?? throw new ManifestException(Refusal(type, "it is null, not an object"));
        }
        catch (JsonException e)
        {
            throw new ManifestException(Refusal(type, Describe(type, e)), e);
        }
    }

    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> type)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
            JsonSerializer.Serialize(writer, value, type);
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    public static string Refusal(int version, string problem) => $"the manifest is not a survey6 capture manifest (version {version}): {problem}";

    public static bool IsSha256(string? text) => text is { Length: 64 } && text.All(char.IsAsciiHexDigit);

    private static string Refusal<T>(JsonTypeInfo<T> type, string problem) =>
        type.Type == typeof(CaptureManifest) ? Refusal(CaptureManifest.CurrentVersion, problem) : "the stored manifest cannot be read: " + problem;

    /// <summary>The serializer's message without type names, naming the field by its JSON path.</summary>
    private static string Describe(JsonTypeInfo root, JsonException e)
    {
        var field = e.Path is { Length: > 2 } path ? path[2..] : null; // "$.drops.queue" -> "drops.queue"
        var message = e.Message;
        var missing = message.IndexOf(MissingRequired, StringComparison.Ordinal);
        if (missing >= 0)
        {
            var names = message[(missing + MissingRequired.Length)..].TrimEnd('.').Trim();
            var prefix = field is null ? "" : field + ".";
            var fields = string.Join(", ", names.Split(", ").Select(n => "'" + prefix + n.Trim('\'') + "'"));
            // The serializer lists only the first few when many are missing.
            return (fields.Contains(',', StringComparison.Ordinal) ? "missing required fields including " : "missing required field ") + fields;
        }

        if (message.StartsWith(CannotConvert, StringComparison.Ordinal) && field is null)
            return "it is not a JSON object";

        // The serializer names the enclosing type, not the one it wanted: find that from the path.
        if (message.StartsWith(CannotConvert, StringComparison.Ordinal) && field is not null && TypeAt(root, field) is { } expected)
            return $"field '{field}' is not {Expected(expected)}";

        if (message.Contains("doesn't allow", StringComparison.Ordinal) && field is not null)
            return $"field '{field}' must not be null";

        // A syntax error, or a converter's own message: keep the message without the serializer's path suffix, add the field.
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        var text = (cut >= 0 ? message[..cut] : message).TrimEnd('.');
        return field is null ? text : $"field '{field}': {text}";
    }
    /// <summary>The type the contract has at <paramref name="path"/> (<c>drops.queue</c>, <c>interfaces[0].frames</c>, <c>labels.site</c>).</summary>
    private static Type? TypeAt(JsonTypeInfo root, string path)
    {
        var current = root;
        Type? type = null;
        foreach (var segment in path.Split('.'))
        {
            var bracket = segment.IndexOf('[', StringComparison.Ordinal);
            var name = bracket >= 0 ? segment[..bracket] : segment;
            type = current.Kind == JsonTypeInfoKind.Dictionary ? current.ElementType
                : current.Properties.FirstOrDefault(p => p.Name == name)?.PropertyType;
            if (type is null)
                return null;
            if (bracket >= 0)
            {
                current = root.Options.GetTypeInfo(type);
                type = current.ElementType;
                if (type is null)
                    return null;
            }

            current = root.Options.GetTypeInfo(type);
        }

        return type;
    }

    private static string Expected(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type == typeof(long) || type == typeof(int) ? "an integer"
            : type == typeof(double) ? "a number"
            : type == typeof(string) ? "a string"
            : type == typeof(bool) ? "true or false"
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>) ? "an object of strings"
            : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IReadOnlyList<>) ? "an array"
            : "an object";
    }
}

/// <summary>RFC 3339 times as nanoseconds since the Unix epoch; written UTC with nine fractional digits.</summary>
internal sealed class UnixNanosecondsJsonConverter : JsonConverter<long?>
{
    public override bool HandleNull => true;

    public override long? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
            return null;
        if (reader.TokenType != JsonTokenType.String)
            throw new JsonException("not an RFC 3339 time (a string like 2025-01-01T12:00:00.000000000Z)");
        var text = reader.GetString()!;
        return PcapngMetadata.TryParseTimestamp(text, out var nanoseconds) ? nanoseconds
            : throw new JsonException($"'{text}' is not an RFC 3339 time like 2025-01-01T12:00:00.000000000Z");
    }

    public override void Write(Utf8JsonWriter writer, long? value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value is { } nanoseconds)
            writer.WriteStringValue(PcapngMetadata.FormatTimestamp(nanoseconds));
        else
            writer.WriteNullValue();
    }
}

using System.Text.Json;

namespace Survey6.Server.Storage;

/// <summary>Labels are stored as a JSON object of strings, keys sorted so equal sets compare equal as text.</summary>
internal static class Labels
{
    public static string ToJson(IReadOnlyDictionary<string, string> labels) =>
        JsonSerializer.Serialize(new SortedDictionary<string, string>(labels.ToDictionary(), StringComparer.Ordinal));

    public static IReadOnlyDictionary<string, string> FromJson(string json) =>
        JsonSerializer.Deserialize<SortedDictionary<string, string>>(json) ?? new SortedDictionary<string, string>(StringComparer.Ordinal);
}

namespace Survey6.Contracts;

/// <summary>
/// The syntax and limits of probe labels, whichever way they come in: <c>--label key=value</c> (probe join, token
/// create), the web UI's token form (one <c>key=value</c> per line or comma), the API's and the join's label maps, and
/// the probe's <c>Probe:Labels</c> configuration section. Each of those only says where the labels came from.
/// </summary>
/// <remarks>
/// Keys have no whitespace, '=', ';' or control characters, so the <c>k=v;k=v</c> forms (the pcapng comment, the lake's
/// <c>labels</c> column) split unambiguously. The pcapng form also refuses ';' in values (<c>PcapngMetadata.FormatLabels</c>),
/// which only the probe's own labels travel in.
/// </remarks>
public static class ProbeLabels
{
    public const int MaxCount = 64;

    public const int MaxKeyLength = 63;

    public const int MaxValueLength = 256;

    /// <summary>
    /// <c>key=value</c> texts into labels (whitespace around key and value trimmed; a later key wins), checked as
    /// <see cref="Check"/> does. False with the first problem, phrased for the user.
    /// </summary>
    public static bool TryParse(IEnumerable<string>? pairs, out SortedDictionary<string, string> labels, out string? error)
    {
        labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs ?? [])
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? "" : pair[..equals].Trim();
            if (key.Length == 0)
            {
                error = $"label '{Cut(pair.Trim())}' is not key=value";
                return false;
            }

            labels[key] = pair[(equals + 1)..].Trim();
        }

        error = Check(labels);
        return error is null;
    }

    /// <summary>Null when the labels are fine, else the first problem, phrased for the user. A null value (JSON's) is a problem too.</summary>
    public static string? Check(IEnumerable<KeyValuePair<string, string>>? labels)
    {
        var count = 0;
        foreach (var (key, value) in labels ?? [])
        {
            if (++count > MaxCount)
                return $"more than {MaxCount} labels";
            if (CheckKey(key) is { } keyProblem)
                return keyProblem;
            if (value is null)
                return $"label '{key}' has no value";
            if (value.Length > MaxValueLength)
                return $"label '{key}' has a value longer than {MaxValueLength} characters";
            if (value.Any(char.IsControl))
                return $"label '{key}' has a control character in its value";
        }

        return null;
    }

    private static string? CheckKey(string key)
    {
        if (key.Length == 0)
            return "a label has an empty key";
        if (key.Length > MaxKeyLength)
            return $"label key '{Cut(key)}' is longer than {MaxKeyLength} characters";
        if (key.Any(c => c is '=' or ';' || char.IsWhiteSpace(c) || char.IsControl(c)))
            return $"label key '{Cut(key)}' has whitespace, '=', ';' or a control character";
        return null;
    }

    // A message quotes at most this much of what the user gave; the rest is "...".
    private static string Cut(string text) => text.Length > MaxKeyLength + 1 ? text[..MaxKeyLength] + "..." : text;
}

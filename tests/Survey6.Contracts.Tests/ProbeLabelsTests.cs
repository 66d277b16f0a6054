namespace Survey6.Contracts.Tests;

/// <summary>
/// What the user is told about bad labels. The messages are the same for every way of giving labels:
/// <c>survey6 probe join --label</c> and <c>survey6 server token create --label</c> print them after the command's name,
/// the web UI's token form shows them under its labels field, the API returns them as <c>errors.labels</c>, a refused
/// join carries them, and the probe's start fails with them after <c>Probe:Labels:</c>.
/// </summary>
public sealed class ProbeLabelsTests
{
    private static readonly string LongKey = new('k', 100);

    public static TheoryData<string[], string> BadPairs => new()
    {
        { ["novalue"], "label 'novalue' is not key=value" },
        { ["=lab"], "label '=lab' is not key=value" },
        { ["  = lab"], "label '= lab' is not key=value" },
        { ["site=lab", "rack"], "label 'rack' is not key=value" },
        { ["a b=1"], "label key 'a b' has whitespace, '=', ';' or a control character" },
        { ["a;b=1"], "label key 'a;b' has whitespace, '=', ';' or a control character" },
        { [LongKey + "=1"], $"label key '{new string('k', ProbeLabels.MaxKeyLength)}...' is longer than {ProbeLabels.MaxKeyLength} characters" },
        { ["site=" + new string('x', ProbeLabels.MaxValueLength + 1)], $"label 'site' has a value longer than {ProbeLabels.MaxValueLength} characters" },
        { ["site=a\u0007b"], "label 'site' has a control character in its value" },
        { Enumerable.Range(0, ProbeLabels.MaxCount + 1).Select(i => $"k{i}=v").ToArray(), $"more than {ProbeLabels.MaxCount} labels" },
    };

    [Theory]
    [MemberData(nameof(BadPairs))]
    public void A_bad_pair_is_refused_with_what_is_wrong_and_where(string[] pairs, string message)
    {
        Assert.False(ProbeLabels.TryParse(pairs, out _, out var error));
        Assert.Equal(message, error);
    }

    [Fact]
    public void Good_pairs_are_trimmed_and_a_later_key_wins()
    {
        Assert.True(ProbeLabels.TryParse([" site = lab ", "rack=r1", "expr=a=b;c", "empty=", "site=dc2"], out var labels, out var error));
        Assert.Null(error);
        Assert.Equal(
            new SortedDictionary<string, string>(StringComparer.Ordinal) { ["empty"] = "", ["expr"] = "a=b;c", ["rack"] = "r1", ["site"] = "dc2" },
            labels);
    }

    [Fact]
    public void No_pairs_are_no_labels()
    {
        Assert.True(ProbeLabels.TryParse(null, out var labels, out var error));
        Assert.Null(error);
        Assert.Empty(labels);
    }

    public static TheoryData<Dictionary<string, string>, string> BadMaps => new()
    {
        { new() { [""] = "lab" }, "a label has an empty key" },
        { new() { ["site"] = null! }, "label 'site' has no value" },
        { new() { ["bad key"] = "x" }, "label key 'bad key' has whitespace, '=', ';' or a control character" },
    };

    /// <summary>The API's JSON and the join's label maps come without the key=value text and are checked the same way.</summary>
    [Theory]
    [MemberData(nameof(BadMaps))]
    public void A_bad_map_is_refused_with_what_is_wrong(Dictionary<string, string> labels, string message) =>
        Assert.Equal(message, ProbeLabels.Check(labels));

    [Fact]
    public void The_largest_labels_allowed_pass()
    {
        var labels = Enumerable.Range(0, ProbeLabels.MaxCount)
            .ToDictionary(i => i.ToString("D" + ProbeLabels.MaxKeyLength, System.Globalization.CultureInfo.InvariantCulture), _ => new string('v', ProbeLabels.MaxValueLength));
        Assert.Null(ProbeLabels.Check(labels));
    }
}

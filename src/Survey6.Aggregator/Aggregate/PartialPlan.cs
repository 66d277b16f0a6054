using System.Security.Cryptography;
using System.Text;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// One capture's partial aggregates as they should be now: named by the capture and by what its duplicate check
/// depends on (the overlapping captures of its probe with a smaller SHA-256), so that a partial is current exactly
/// when a folder of that name exists, and a late capture that changes the dependencies changes the name.
/// </summary>
internal sealed record PlannedPartial(string Sha256, string Probe, string PacketsFile, long? FromNs, long? ToNs, IReadOnlyList<string> EarlierFiles, string Name);

/// <summary>The time span of a capture's timestamped frames (both null when it has none).</summary>
internal readonly record struct CaptureSpan(long? FromNs, long? ToNs);

internal static class PartialPlan
{
    /// <summary>
    /// Plans every capture of one date. <paramref name="packetsFiles"/> are the date's packets files
    /// (<c>probe=P/SHA.parquet</c>); <paramref name="spans"/> their captures rows' first and last frame times. A
    /// capture without a captures row is taken to overlap everything of its probe, so that no duplicate is missed.
    /// </summary>
    public static List<PlannedPartial> For(IReadOnlyList<string> packetsFiles, IReadOnlyDictionary<string, CaptureSpan> spans, string settings = "")
    {
        var captures = packetsFiles
            .Select(f => (File: f, Sha: Path.GetFileNameWithoutExtension(f), Probe: Path.GetFileName(Path.GetDirectoryName(f)!)))
            .Select(c => (c.File, c.Sha, c.Probe, Span: spans.TryGetValue(c.Sha, out var s) ? s : (CaptureSpan?)null))
            .ToList();
        var plan = new List<PlannedPartial>(captures.Count);
        foreach (var byProbe in captures.GroupBy(c => c.Probe, StringComparer.Ordinal))
        {
            var group = byProbe.OrderBy(c => c.Sha, StringComparer.Ordinal).ToList();
            for (int i = 0; i < group.Count; i++)
            {
                var c = group[i];
                var earlier = new List<(string Sha, string File)>();
                for (int j = 0; j < i; j++)
                {
                    if (Overlap(c.Span, group[j].Span))
                        earlier.Add((group[j].Sha, group[j].File));
                }
                var key = new StringBuilder().Append(AggregateSql.PartialFormat).Append(settings);
                foreach (var (sha, _) in earlier)
                    key.Append('\n').Append(sha);
                var suffix = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key.ToString())))[..16];
                plan.Add(new PlannedPartial(c.Sha, c.Probe, c.File, c.Span?.FromNs, c.Span?.ToNs, earlier.ConvertAll(e => e.File), c.Sha + "." + suffix));
            }
        }
        plan.Sort((a, b) => string.CompareOrdinal(a.Probe + "/" + a.Name, b.Probe + "/" + b.Name));
        return plan;
    }

    /// <summary>
    /// Whether two captures can share a frame. Duplicates need a timestamp, so a capture without timestamped frames
    /// overlaps nothing; an unknown span overlaps everything.
    /// </summary>
    private static bool Overlap(CaptureSpan? a, CaptureSpan? b)
    {
        if (a is null || b is null)
            return true;
        if (a.Value.FromNs is not { } aFrom || a.Value.ToNs is not { } aTo || b.Value.FromNs is not { } bFrom || b.Value.ToNs is not { } bTo)
            return false;
        return aFrom <= bTo && bFrom <= aTo;
    }
}

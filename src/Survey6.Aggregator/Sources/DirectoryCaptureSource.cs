using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Ledger;
using Survey6.Data;

namespace Survey6.Aggregator.Sources;

/// <summary>
/// Lists stored captures by scanning <c>DATA/captures/PROBE/YYYY-MM-DD/SHA.manifest.json</c>. The C&amp;C writes
/// the manifest after the capture is durable, so a manifest means the capture beside it is complete. Captures
/// the ledger already knows (parsed, failed or quarantined) are skipped: retries are the cleanup stage's.
/// </summary>
public sealed class DirectoryCaptureSource(IOptions<AggregatorOptions> options, IRunLedger ledger) : ICaptureSource
{
    public const string CaptureSuffix = DataLayout.CaptureSuffix;
    public const string ManifestSuffix = DataLayout.CaptureManifestSuffix;

    public async IAsyncEnumerable<PendingCapture> ListAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var known = ledger.KnownCaptures();
        var root = options.Value.Layout.Captures;
        foreach (var capture in Scan(root))
        {
            ct.ThrowIfCancellationRequested();
            if (!known.Contains(capture.Sha256))
                yield return capture;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    public ValueTask CompleteAsync(PendingCapture capture, CaptureOutcome outcome, string? reason, CancellationToken ct) => ValueTask.CompletedTask;

    /// <summary>Every stored capture with a manifest, by date, then probe, then SHA.</summary>
    public static IEnumerable<PendingCapture> Scan(string capturesRoot)
    {
        if (!Directory.Exists(capturesRoot))
            yield break;
        var found = new List<PendingCapture>();
        foreach (var probeDir in Directory.EnumerateDirectories(capturesRoot))
        {
            var probe = Path.GetFileName(probeDir);
            if (!IsValidProbeId(probe))
                continue;
            foreach (var dateDir in Directory.EnumerateDirectories(probeDir))
            {
                if (!DataLayout.TryParseDateFolder(Path.GetFileName(dateDir), out var date))
                    continue;
                foreach (var manifest in Directory.EnumerateFiles(dateDir, "*" + ManifestSuffix))
                {
                    var name = Path.GetFileName(manifest);
                    var sha = name[..^ManifestSuffix.Length];
                    if (!IsSha256(sha))
                        continue;
                    var capture = Path.Combine(dateDir, sha + CaptureSuffix);
                    if (File.Exists(capture))
                        found.Add(new PendingCapture(sha, probe, date, capture, manifest));
                }
            }
        }
        found.Sort((a, b) =>
        {
            int c = a.Date.CompareTo(b.Date);
            if (c == 0)
                c = string.CompareOrdinal(a.ProbeId, b.ProbeId);
            return c != 0 ? c : string.CompareOrdinal(a.Sha256, b.Sha256);
        });
        foreach (var capture in found)
            yield return capture;
    }

    /// <summary>64 lower-case hex digits, as the C&amp;C names stored files.</summary>
    public static bool IsSha256(string s) => DataLayout.IsSha256(s);

    /// <summary>The C&amp;C's rule for probe folder names: 1-128 of [A-Za-z0-9._-], not starting with a dot.</summary>
    public static bool IsValidProbeId(string probe) => DataLayout.IsValidProbeId(probe);
}

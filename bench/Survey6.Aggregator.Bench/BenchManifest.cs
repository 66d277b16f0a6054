using Survey6.Contracts.Manifests;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// A stored manifest as the C&amp;C writes it, with the probe's manifest carrying the drop counters: as in production,
/// the parser then need not scan the file for them.
/// </summary>
internal static class BenchManifest
{
    public static void Write(string path, string sha, string probe, DateTimeOffset windowStart, DateTimeOffset windowEnd)
    {
        long start = windowStart.ToUnixTimeMilliseconds() * 1_000_000, end = windowEnd.ToUnixTimeMilliseconds() * 1_000_000;
        var probeManifest = new CaptureManifest
        {
            ManifestVersion = CaptureManifest.CurrentVersion,
            File = Path.GetFileName(path),
            Sha256 = sha,
            Size = 0,
            WindowStartNs = start,
            WindowEndNs = end,
            Frames = 0,
            Drops = new ManifestDrops { Kernel = 0, Interface = 0, Queue = 0, Disk = 0 },
            Interfaces = [],
        };
        File.WriteAllBytes(path, StoredCaptureManifest.Create(sha, probe, 0, "pcapng", start, end, end,
            new Dictionary<string, string> { ["site"] = "bench" }, null, probeManifest.ToJson()).ToUtf8Json());
    }
}

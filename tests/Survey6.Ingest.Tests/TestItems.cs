using System.Security.Cryptography;
using System.Text;

namespace Survey6.Ingest.Tests;

internal static class TestItems
{
    /// <summary>A capture with a real-looking sha and an odd offset and tick count, to check round trips.</summary>
    public static CaptureEnqueued Capture(int n, string probe = "probe-a") => new(
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"capture {n}"))),
        probe,
        $"/data/captures/{probe}/2025-03-01/{n}.pcapng",
        1000 + n,
        new DateTimeOffset(2025, 3, 1, 12, 0, 0, TimeSpan.FromHours(2)).AddTicks(n * 1234567L),
        n % 2 == 0 ? $"/data/captures/{probe}/2025-03-01/{n}.manifest.json" : null);
}

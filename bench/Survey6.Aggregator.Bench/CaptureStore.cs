using System.Globalization;
using System.Security.Cryptography;
using Survey6.Data;
using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// Puts captures where the C&amp;C stores an upload (<c>DATA/captures/PROBE/DATE/SHA.pcapng</c> with its manifest), as
/// if the probe had uploaded them, so that the shipped <c>survey6 aggregate once</c> finds them with its directory scan.
/// The capture is moved, not copied; its window is its first and last packet.
/// </summary>
internal static class CaptureStore
{
    public static int Run(string[] args)
    {
        if (args.Length < 3)
        {
            Console.Error.WriteLine("usage: store DATA PROBE CAPTURE...");
            return 2;
        }

        var layout = new DataLayout(Path.GetFullPath(args[0]));
        var probe = args[1];
        if (!DataLayout.IsValidProbeId(probe))
        {
            Console.Error.WriteLine($"'{probe}' is not a probe id");
            return 2;
        }

        foreach (var capture in args[2..])
        {
            long first = long.MaxValue, last = long.MinValue, frames = 0;
            using (var reader = CaptureReader.Open(capture))
            {
                while (reader.TryRead(out var frame))
                {
                    frames++;
                    if (!frame.HasTimestamp)
                        continue;
                    first = Math.Min(first, frame.TimestampNanoseconds);
                    last = Math.Max(last, frame.TimestampNanoseconds);
                }
            }

            if (frames == 0)
            {
                Console.Error.WriteLine($"{capture}: no packets");
                return 1;
            }

            string sha;
            using (var stream = File.OpenRead(capture))
                sha = Convert.ToHexStringLower(SHA256.HashData(stream));
            var start = DateTimeOffset.FromUnixTimeMilliseconds(first / 1_000_000);
            var date = DateOnly.FromDateTime(start.UtcDateTime);
            var stored = layout.CapturePath(probe, date, sha);
            Directory.CreateDirectory(Path.GetDirectoryName(stored)!);
            File.Move(capture, stored, overwrite: true);
            // The manifest last: the directory scan takes a capture only once its manifest is there, as on the server.
            BenchManifest.Write(layout.CaptureManifestPath(probe, date, sha), sha, probe, start, DateTimeOffset.FromUnixTimeMilliseconds(last / 1_000_000 + 1));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{probe} {date:yyyy-MM-dd} {sha} {frames}"));
        }

        return 0;
    }
}

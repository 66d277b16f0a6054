using System.Globalization;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Sources;
using Survey6.Aggregator.Storage;
using Survey6.Data;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// Fills a lake for the aggregate benchmark: every capture is parsed by <see cref="CaptureParser"/> (what the parse
/// stage runs) as the capture of its own probe, so that the clean step's per-probe duplicate check keeps them all.
/// Prints the parsing thread's CPU time per capture: a second parse figure, on CaptureGen's traffic.
/// </summary>
internal static class LakeBuilder
{
    public static int Run(string[] args)
    {
        if (args.Length < 3)
        {
            Console.Error.WriteLine("usage: lake LAKE DATE(yyyy-MM-dd) CAPTURE...");
            return 2;
        }

        var lake = new LakeLayout(Path.GetFullPath(args[0]));
        var date = DateOnly.ParseExact(args[1], "yyyy-MM-dd", CultureInfo.InvariantCulture);
        // Zeek's timeouts, as the aggregate stage uses when Aggregator:Connections is not set.
        var parser = new CaptureParser(lake, new Survey6.Aggregator.AggregatorOptions().ResolvedRowGroupSize, anonymiser: null, new ConnectionOptions());
        using var allocations = AllocationSampler.FromEnvironment();
        long totalFrames = 0;
        double totalCpu = 0;
        for (int i = 2; i < args.Length; i++)
        {
            var capture = Path.GetFullPath(args[i]);
            var probe = string.Create(CultureInfo.InvariantCulture, $"bench-{i - 1:D2}");
            var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(capture)));
            var manifest = capture + ".manifest.json";
            var midnight = new DateTimeOffset(date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            BenchManifest.Write(manifest, sha, probe, midnight, midnight.AddHours(1));
            // Where the server's store keeps the capture (the lake's data directory), as the connections step reads it
            // there: without it the aggregate stage would skip connections and the bench would time less than ships.
            var stored = new DataLayout(Path.GetDirectoryName(lake.Root)!).CapturePath(probe, date, sha);
            Directory.CreateDirectory(Path.GetDirectoryName(stored)!);
            if (!File.Exists(stored))
                File.CreateSymbolicLink(stored, capture);
            long cpu0 = ThreadCpu.Nanoseconds();
            long allocated0 = GC.GetAllocatedBytesForCurrentThread();
            var paused0 = GC.GetTotalPauseDuration();
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            // Blocking, as in Program.cs: the packets file is written before ParseAsync's first await, on this
            // thread, so this thread's CPU time is the parse's; an await here could resume on another thread.
            var result = parser.ParseAsync(new PendingCapture(sha, probe, date, capture, manifest), "bench", CancellationToken.None).GetAwaiter().GetResult();
            double cpu = (ThreadCpu.Nanoseconds() - cpu0) / 1e9;
            double pausedS = (GC.GetTotalPauseDuration() - paused0).TotalSeconds;
            double allocatedMb = (GC.GetAllocatedBytesForCurrentThread() - allocated0) / 1e6;
            var collections = string.Create(CultureInfo.InvariantCulture,
                $"{GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}");
            if (result.Status != ParseStatus.Parsed)
            {
                Console.Error.WriteLine($"{capture}: {result.Status} {result.Reason}");
                return 1;
            }

            totalFrames += result.Frames;
            totalCpu += cpu;
            long fragments = Directory.GetFiles(lake.ParsedConnections, sha + ".*.parquet", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{probe}: {result.Frames} frames, {cpu:F2} CPU-s of the parsing thread, {result.Frames / cpu / 1e6:F2} M frames/CPU-s -> {result.PacketsPath} ({new FileInfo(result.PacketsPath!).Length / 1e6:F1} MB), connection fragments {fragments / 1e6:F1} MB; allocated {allocatedMb:F0} MB, collections (gen 0/1/2) {collections}, paused {pausedS:F2} s"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"total: {totalFrames} frames, {totalCpu:F2} CPU-s, {totalFrames / totalCpu / 1e6:F2} M frames/CPU-s"));
        allocations?.Report(Console.Out);
        return 0;
    }
}

using System.Diagnostics;
using Survey6.Aggregator.Bench;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Sources;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;

// Parse-stage throughput: read + dissect + columnar fill + Parquet (zstd) on one thread.
// Usage: Survey6.Aggregator.Bench [frames=2000000] [rowGroupSize=the product's default] [repeats=3] [synthetic|flows|corpus] [anonymise]
//        Survey6.Aggregator.Bench lake LAKE DATE CAPTURE...   (parse each capture as its own probe into LAKE, for bench/aggregate.sh)
//        Survey6.Aggregator.Bench connections CAPTURE|FRAMES [repeats=3]   (connection tracking alone, see ConnectionsBench)
if (args.Length > 0 && args[0] == "lake")
    return LakeBuilder.Run(args[1..]);
if (args.Length > 0 && args[0] == "store")
    return CaptureStore.Run(args[1..]);
if (args.Length > 1 && args[0] == "connections")
    return ConnectionsBench.Run(args[1], args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 3);

int frames = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 2_000_000;
int rowGroup = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : new Survey6.Aggregator.AggregatorOptions().ResolvedRowGroupSize;
int repeats = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 3;
string mix = args.Length > 3 ? args[3] : "synthetic";

var work = Path.Combine(Path.GetTempPath(), "survey6-parse-bench");
Directory.CreateDirectory(work);
var capture = Path.Combine(work, $"{mix}-{frames}.pcapng");
if (!File.Exists(capture))
{
    Console.WriteLine($"generating {frames} frames into {capture}");
    if (mix == "corpus")
    {
        if (!CorpusReplay.TryWrite(capture + ".part", frames))
        {
            Console.Error.WriteLine("no ../shared/testdata/pcaps above the program");
            return 1;
        }
    }
    else
    {
        TrafficGenerator.Write(capture + ".part", frames, flows: mix == "flows");
    }
    File.Move(capture + ".part", capture);
}
Console.WriteLine($"capture: {new FileInfo(capture).Length / 1e6:F1} MB, {frames} frames, row group {rowGroup}");

var sha = new string('a', 64);
var manifest = Path.Combine(work, "bench.manifest.json");
BenchManifest.Write(manifest, sha, "bench", new DateTimeOffset(2024, 5, 1, 10, 0, 0, TimeSpan.Zero), new DateTimeOffset(2024, 5, 1, 11, 0, 0, TimeSpan.Zero));
var pending = new PendingCapture(sha, "bench", new DateOnly(2024, 5, 1), capture, manifest);
var lake = new LakeLayout(new Survey6.Data.DataLayout(work).Lake);
if (args.Length > 4 && args[4] == "anonymise")
    return AnonymisationBench.Run(pending, lake, frames, rowGroup, repeats);

for (int r = 0; r < repeats; r++)
{
    // Baseline: what reading and dissecting alone cost.
    var (readWall, readCpu) = Measure(() =>
    {
        using var reader = CaptureReader.Open(capture);
        var record = new PacketRecord();
        long n = 0;
        while (reader.TryRead(out var frame))
            FrameDissection.Dissect(frame, ++n, ref record);
    });

    // Zeek's timeouts, as the aggregate stage uses when Aggregator:Connections is not set.
    var parser = new CaptureParser(lake, rowGroup, anonymiser: null, new ConnectionOptions());
    ParseResult? result = null;
    long thread0 = ThreadCpu.Nanoseconds();
    var (parseWall, parseCpu) = Measure(() => result = parser.ParseAsync(pending, "bench", CancellationToken.None).GetAwaiter().GetResult());
    double parseThread = (ThreadCpu.Nanoseconds() - thread0) / 1e9;
    var size = result!.PacketsPath is null ? 0 : new FileInfo(result.PacketsPath).Length;
    Console.WriteLine(
        $"run {r + 1}: read+dissect {frames / readCpu / 1e6:F2} M frames/CPU-s; parse to Parquet {frames / parseThread / 1e6:F2} M frames/CPU-s of the parsing thread " +
        $"({frames / parseCpu / 1e6:F2} M counting every thread, JIT included; {frames / parseWall / 1e6:F2} M/s wall), output {size / 1e6:F1} MB, {size / (double)frames:F1} B/row");
}

// CPU time of this thread, not wall time: the bench machine is shared, and the target is per core.
static (double Wall, double Cpu) Measure(Action action)
{
    GC.Collect();
    var thread = Process.GetCurrentProcess();
    var cpu0 = thread.TotalProcessorTime;
    var wall = Stopwatch.StartNew();
    action();
    wall.Stop();
    thread.Refresh();
    return (wall.Elapsed.TotalSeconds, (thread.TotalProcessorTime - cpu0).TotalSeconds);
}
return 0;

/// <summary>CPU time of the calling thread (user + system), which leaves out the JIT's and the GC's threads.</summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTime = 3;

    public static long Nanoseconds()
    {
        if (!OperatingSystem.IsLinux() || clock_gettime(ClockThreadCpuTime, out var t) != 0)
            return 0;
        return (t.Seconds * 1_000_000_000L) + t.Nanoseconds;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int clock_gettime(int clock, out Timespec time);

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}

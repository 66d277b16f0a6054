using System.Diagnostics;
using Survey6.Aggregator.Connections;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// Connection tracking alone: the flow views of a capture's frames are dissected once and held in memory, then fed to
/// <see cref="ConnectionTracker"/> again and again; CPU time and bytes allocated per record, and the drain and stitch.
/// Two cases: no connection may continue an earlier capture (the hot path), and every one may (the capture is shorter
/// than the idle timeout, so every connection keeps its packets for the stitcher).
/// </summary>
internal static class ConnectionsBench
{
    /// <param name="captureOrFrames">A capture file, or a frame count for the generator's flows mix (5 000 flows).</param>
    public static int Run(string captureOrFrames, int repeats)
    {
        string capture = captureOrFrames;
        if (!File.Exists(capture))
        {
            int frames = int.Parse(captureOrFrames, System.Globalization.CultureInfo.InvariantCulture);
            capture = Path.Combine(Path.GetTempPath(), $"survey6-connections-bench-flows-{frames}.pcapng");
            if (!File.Exists(capture))
            {
                TrafficGenerator.Write(capture + ".part", frames, flows: true);
                File.Move(capture + ".part", capture);
            }
        }

        var packets = new List<ConnectionPacket>();
        using (var reader = CaptureReader.Open(capture))
        {
            var record = new PacketRecord();
            long n = 0;
            while (reader.TryRead(out var frame))
            {
                FrameDissection.Dissect(frame, ++n, ref record);
                if (ConnectionPacket.TryFrom(record, out var packet))
                    packets.Add(packet);
            }
        }

        var input = packets.ToArray();
        Console.WriteLine($"connections: {input.Length} records from {capture}");
        foreach (var (name, windowStart) in new[] { ("hot path (no head-open connection)", long.MinValue / 2), ("every connection head-open", input[0].TimestampNs) })
        {
            for (int r = 0; r < repeats; r++)
            {
                var tracker = new ConnectionTracker("bench", "capture", windowStart);
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                long allocated = GC.GetAllocatedBytesForCurrentThread();
                var wall = Stopwatch.StartNew();
                foreach (ref readonly var p in input.AsSpan())
                    tracker.Add(p);
                wall.Stop();
                double addCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
                long addBytes = GC.GetAllocatedBytesForCurrentThread() - allocated;

                var drain = Stopwatch.StartNew();
                var fragments = tracker.Drain();
                var connections = new ConnectionStitcher().Stitch(fragments);
                drain.Stop();
                Console.WriteLine(
                    $"{name}, run {r + 1}: add {input.Length / addCpu / 1e6:F2} M records/CPU-s ({addCpu * 1e9 / input.Length:F0} ns), " +
                    $"{(double)addBytes / input.Length:F1} B/record allocated; {fragments.Count} fragments, {connections.Count} connections; " +
                    $"drain+stitch {drain.Elapsed.TotalSeconds:F2} s");
            }
        }

        // The steady state: packets of connections already known allocate nothing.
        var warm = new ConnectionTracker("bench", "capture", long.MinValue / 2);
        foreach (ref readonly var p in input.AsSpan())
            warm.Add(p);
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (ref readonly var p in input.AsSpan())
            warm.Add(p);
        Console.WriteLine($"second pass over known connections: {(double)(GC.GetAllocatedBytesForCurrentThread() - before) / input.Length:F2} B/record");
        return 0;
    }
}

using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// Writes a pcapng that replays the Ethernet frames of the shared test corpus (real traffic from public projects'
/// test suites) until it holds the requested number, with fresh increasing timestamps. Few distinct addresses and
/// a varied protocol mix: the opposite corner from <see cref="TrafficGenerator"/>'s uniformly random hosts.
/// </summary>
public static class CorpusReplay
{
    public static bool TryWrite(string path, int frames)
    {
        var root = FindCorpus();
        if (root is null)
            return false;
        var pool = new List<byte[]>();
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            using var reader = CaptureReader.Open(file);
            while (reader.TryRead(out var frame))
            {
                if (frame.Kind == FrameKind.Packet && frame.LinkType == LinkType.Ethernet && frame.Data.Length == frame.OriginalLength)
                    pool.Add(frame.Data.ToArray());
            }
        }
        using var stream = File.Create(path);
        using var writer = new PcapngWriter(stream, new PcapngSectionInfo { UserApplication = "survey6 bench" });
        writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = "eth0" });
        long time = 1_714_557_600_000_000_000L;
        for (int n = 0; n < frames; n++)
        {
            time += 1_000 + (n % 7919);
            var frame = pool[n % pool.Count];
            writer.WritePacket(0, time, frame, (uint)frame.Length);
        }
        return true;
    }

    private static string? FindCorpus()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "..", "shared", "testdata", "pcaps");
            if (Directory.Exists(candidate))
                return Path.GetFullPath(candidate);
        }
        return null;
    }
}

using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Tests.Support;

/// <summary>Builds a pcapng in memory with the packet core's writer.</summary>
public sealed class CaptureFile
{
    private readonly List<(long Time, byte[] Frame)> _frames = [];
    private readonly List<KeyValuePair<string, string>> _metadata = [];
    private PcapngInterfaceStatistics? _statistics;

    public CaptureFile Add(long timeNs, byte[] frame)
    {
        _frames.Add((timeNs, frame));
        return this;
    }

    public CaptureFile Metadata(string key, string value)
    {
        _metadata.Add(new(key, value));
        return this;
    }

    public CaptureFile Statistics(PcapngInterfaceStatistics statistics)
    {
        _statistics = statistics;
        return this;
    }

    public byte[] ToArray()
    {
        using var stream = new MemoryStream();
        using (var writer = new PcapngWriter(stream, new PcapngSectionInfo { UserApplication = "survey6 tests", Metadata = _metadata }, leaveOpen: true))
        {
            writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = "eth0", Filter = "ip6" });
            foreach (var (time, frame) in _frames)
                writer.WritePacket(0, time, frame, (uint)frame.Length);
            if (_statistics is not null)
                writer.WriteInterfaceStatistics(0, _frames.Count > 0 ? _frames[^1].Time : 0, _statistics);
        }
        return stream.ToArray();
    }

    /// <summary>Nanoseconds since the epoch of a UTC time on 2024-05-01.</summary>
    public static long At(int hour, int minute, int second, int ns = 0) =>
        (new DateTimeOffset(2024, 5, 1, hour, minute, second, TimeSpan.Zero).ToUnixTimeSeconds() * 1_000_000_000L) + ns;
}

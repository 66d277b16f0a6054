using BenchmarkDotNet.Attributes;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Packets.Text;

namespace Survey6.Benchmarks;

/// <summary>
/// The packet core's per-packet hot paths over a real traffic mix: every frame of the shared test captures
/// (or of the capture named by SURVEY6_BENCH_CAPTURE), held in memory so the disk is out of the picture.
/// Results are per frame (OperationsPerInvoke).
/// </summary>
[MemoryDiagnoser]
public class PacketCoreBenchmarks
{
    private const int MaxFrames = 200_000;
    private byte[][] _frames = [];
    private LinkType[] _linkTypes = [];
    private byte[] _file = [];
    private PacketRecord _record;
    private CaptureStatistics _statistics = new();
    private Ipv6Address[] _addresses = [];

    [GlobalSetup]
    public void Setup()
    {
        var frames = new List<byte[]>();
        var linkTypes = new List<LinkType>();
        foreach (var path in CaptureFiles())
        {
            using var reader = CaptureReader.Open(path);
            while (frames.Count < MaxFrames && reader.TryRead(out var frame))
            {
                if (frame.Kind == FrameKind.Packet)
                {
                    frames.Add(frame.Data.ToArray());
                    linkTypes.Add(frame.LinkType);
                }
            }
        }

        // Cycle a small corpus up to exactly MaxFrames so per-frame results are exact.
        int distinct = frames.Count;
        for (int i = 0; frames.Count < MaxFrames; i++)
        {
            frames.Add(frames[i % distinct]);
            linkTypes.Add(linkTypes[i % distinct]);
        }

        _frames = [.. frames];
        _linkTypes = [.. linkTypes];
        _file = BuildPcap(_frames);
        _addresses = [.. Enumerable.Range(0, 4096).Select(i => new Ipv6Address(0x2001_0db8_0000_0000UL + (ulong)i, (ulong)i * 0x9E37_79B9_7F4A_7C15UL))];
    }

    public static IEnumerable<string> CaptureFiles()
    {
        var single = Environment.GetEnvironmentVariable("SURVEY6_BENCH_CAPTURE");
        if (!string.IsNullOrEmpty(single))
        {
            return [single];
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var corpus = Path.Combine(dir.FullName, "..", "shared", "testdata", "pcaps");
            if (Directory.Exists(corpus))
            {
                return Directory.EnumerateFiles(corpus, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);
            }
        }

        throw new DirectoryNotFoundException("set SURVEY6_BENCH_CAPTURE or keep ../shared/testdata beside the repository");
    }

    [Benchmark(OperationsPerInvoke = MaxFrames)]
    public long ReadPcapFromMemory()
    {
        using var reader = CaptureReader.Open(new MemoryStream(_file, writable: false));
        long bytes = 0;
        while (reader.TryRead(out var frame))
        {
            bytes += frame.Data.Length;
        }

        return bytes;
    }

    [Benchmark(OperationsPerInvoke = MaxFrames)]
    public int Dissect()
    {
        int ipv6 = 0;
        var frames = _frames;
        for (int i = 0; i < frames.Length; i++)
        {
            _record.Reset();
            PacketDissector.Dissect(frames[i], _linkTypes[i], ref _record);
            ipv6 += _record.HasIpv6 ? 1 : 0;
        }

        return ipv6;
    }

    [Benchmark(OperationsPerInvoke = MaxFrames)]
    public long DissectAndCount()
    {
        var frames = _frames;
        for (int i = 0; i < frames.Length; i++)
        {
            _record.Reset();
            PacketDissector.Dissect(frames[i], _linkTypes[i], ref _record);
            _statistics.Add(_record);
        }

        return _statistics.Frames;
    }

    [Benchmark(OperationsPerInvoke = MaxFrames)]
    public void DissectAndFormatTshark()
    {
        using var writer = new Utf8LineWriter(Stream.Null);
        var frames = _frames;
        for (int i = 0; i < frames.Length; i++)
        {
            _record.Reset();
            _record.FrameNumber = i + 1;
            _record.FrameLength = (uint)frames[i].Length;
            _record.CapturedLength = (uint)frames[i].Length;
            PacketDissector.Dissect(frames[i], _linkTypes[i], ref _record, TsharkFieldWriter.Options);
            TsharkFieldWriter.WriteRow(writer, _record);
        }
    }

    [Benchmark(OperationsPerInvoke = 4096)]
    public int ClassifyAddress()
    {
        int sum = 0;
        foreach (var address in _addresses)
        {
            sum += (int)Ipv6AddressClassifier.Classify(address).IidClass;
        }

        return sum;
    }

    private static byte[] BuildPcap(byte[][] frames)
    {
        // Classic pcap labelled Ethernet: the read benchmark only reads, so the link type does not matter.
        using var stream = new MemoryStream();
        Span<byte> header = stackalloc byte[24];
        BitConverter.TryWriteBytes(header, 0xA1B2C3D4u);
        BitConverter.TryWriteBytes(header[4..], (ushort)2);
        BitConverter.TryWriteBytes(header[6..], (ushort)4);
        BitConverter.TryWriteBytes(header[16..], 262144u);
        BitConverter.TryWriteBytes(header[20..], 1u);
        stream.Write(header);
        Span<byte> record = stackalloc byte[16];
        foreach (var frame in frames)
        {
            record.Clear();
            BitConverter.TryWriteBytes(record[8..], (uint)frame.Length);
            BitConverter.TryWriteBytes(record[12..], (uint)frame.Length);
            stream.Write(record);
            stream.Write(frame);
        }

        return stream.ToArray();
    }
}

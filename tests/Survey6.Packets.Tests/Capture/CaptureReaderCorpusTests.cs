using System.Buffers.Binary;
using System.Globalization;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Tests.Capture;

/// <summary>CaptureReader against every capture of the shared corpus and its tshark oracle.</summary>
public class CaptureReaderCorpusTests
{
    public static TheoryData<string> Captures()
    {
        var data = new TheoryData<string>();
        foreach (string capture in TestData.AllCaptures())
            data.Add(TestData.RelativePath(capture));
        return data;
    }

    [Fact]
    public void Corpus_is_present()
    {
        Assert.Equal(50, TestData.AllCaptures().Count());
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Frames_match_the_tshark_oracle(string capture)
    {
        string path = TestData.Capture(capture);
        using var reader = CaptureReader.Open(path);
        var frames = CaptureReading.ReadAll(reader);

        var rows = File.ReadLines(TestData.OracleFor(path)).Skip(1).Where(line => line.Length > 0).Select(line => line.Split('\t')).ToList();
        Assert.Equal(rows.Count, frames.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var frame = frames[i];
            Assert.Equal(
                (i + 1, rows[i][1], rows[i][2], rows[i][3]),
                (i + 1, frame.EpochText, frame.OriginalLength.ToString(CultureInfo.InvariantCulture), frame.CapturedLength.ToString(CultureInfo.InvariantCulture)));
        }

        // tshark exits non-zero exactly for the files that end in damage.
        bool tsharkFailed = SummaryRow(capture)["tshark_rc"] != "0";
        Assert.Equal(tsharkFailed, reader.Error is not null);
    }

    [Fact]
    public void Truncated_file_yields_its_complete_record_then_an_error()
    {
        using var reader = CaptureReader.Open(TestData.Capture("dpkt/examples/data/truncated_dns_2.pcap"));
        Assert.Single(CaptureReading.ReadAll(reader));
        Assert.Equal(new CaptureError(240, "file cut short in the middle of a packet record header (needs 16 bytes, 7 present)"), reader.Error);
    }

    [Fact]
    public void Empty_pcapng_yields_nothing_and_no_error()
    {
        using var reader = CaptureReader.Open(TestData.Capture("tcpdump/empty.pcapng"));
        Assert.Equal(CaptureFileFormat.Pcapng, reader.Format);
        Assert.Equal(LinkType.Ethernet, Assert.Single(reader.Interfaces).LinkType);
        Assert.Empty(CaptureReading.ReadAll(reader));
        Assert.Null(reader.Error);
    }

    [Fact]
    public void Link_type_flag_bits_are_masked()
    {
        using var reader = CaptureReader.Open(TestData.Capture("tcpdump/ipv6-next-header-oobr-1.pcap"));
        Assert.Equal(LinkType.Ipv6, reader.LinkType);
        Assert.True(reader.TryRead(out var frame));
        Assert.Equal(LinkType.Ipv6, frame.LinkType);
    }

    [Fact]
    public void Multi_section_big_endian_test_file()
    {
        using var reader = CaptureReader.Open(TestData.Capture("gopacket/pcapgo/tests/be/test202.pcapng"));
        Assert.True(reader.IsBigEndian);
        Assert.Equal("Apple MBP", reader.Section!.Hardware);
        var frames = CaptureReading.ReadAll(reader);
        Assert.Null(reader.Error);
        Assert.Equal([1, 7, 10], frames.Select((f, i) => (f, i)).Where(x => x.f.Kind == FrameKind.Custom).Select(x => x.i + 1));
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2], frames.Select(f => f.SectionIndex));
        Assert.Equal(2, reader.Section.Index);
        Assert.Equal(2, reader.Interfaces.Count);
        Assert.Equal(4, reader.Statistics.Count);
    }

    [Fact]
    public void Many_interfaces()
    {
        using var reader = CaptureReader.Open(TestData.Capture("zeek/ldap/gap-data-missing.pcapng"));
        Assert.Equal(18, CaptureReading.ReadAll(reader).Count);
        Assert.Equal(126, reader.Interfaces.Count);
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Every_cut_reads_a_prefix_and_reports_mid_record_cuts(string capture)
    {
        byte[] bytes = File.ReadAllBytes(TestData.Capture(capture));
        var full = CaptureReading.ReadAll(bytes).Frames;
        var records = Layout(bytes);
        Assert.Equal(records.Count(r => r.YieldsFrame), full.Count);
        var boundaries = records.Select(r => r.End).ToHashSet();

        foreach (int cut in CutOffsets(bytes.Length, records))
        {
            var (frames, error) = CaptureReading.ReadAll(bytes, cut);
            int complete = records.Count(r => r.YieldsFrame && r.End <= cut);
            Assert.Equal(full.Take(complete), frames);
            if (boundaries.Contains(cut))
                Assert.True(error is null, $"cut at {cut}: unexpected error {error}");
            else
                Assert.True(error is not null, $"cut at {cut}: no error");
        }
    }

    [Theory]
    [MemberData(nameof(Captures))]
    public void Non_seekable_chunked_stream_gives_the_same_frames(string capture)
    {
        byte[] bytes = File.ReadAllBytes(TestData.Capture(capture));
        var (expected, expectedError) = CaptureReading.ReadAll(bytes);
        foreach (var (maxChunk, bufferSize) in new[] { (7, CaptureReader.DefaultBufferSize), (1000, 64), (300, 4096) })
        {
            using var reader = CaptureReader.Open(new ChunkedStream(bytes, seed: bytes.Length + maxChunk, maxChunk), false, bufferSize);
            Assert.Equal(expected, CaptureReading.ReadAll(reader));
            Assert.Equal(expectedError, reader.Error);
        }
    }

    [Theory]
    [InlineData("gopacket/pcapgo/tests/be/test202.pcapng")]
    [InlineData("tcpdump/ahcp.pcapng")]
    [InlineData("zeek/ldap/gap-data-missing.pcapng")]
    [InlineData("tcpdump/pptp.pcap")]
    [InlineData("zeek/icmp/icmp6-nd-options.pcap")]
    public void Corrupted_bytes_never_throw(string capture)
    {
        byte[] original = File.ReadAllBytes(TestData.Capture(capture));
        var random = new Random(original.Length);
        for (int round = 0; round < 400; round++)
        {
            byte[] bytes = (byte[])original.Clone();
            int changes = random.Next(1, 6);
            for (int i = 0; i < changes; i++)
            {
                // Half of the edits land in the first 128 bytes, where the file header and metadata blocks are.
                int at = random.Next(random.Next(2) == 0 ? Math.Min(128, bytes.Length) : bytes.Length);
                bytes[at] = random.Next(3) switch
                {
                    0 => (byte)random.Next(256),
                    1 => (byte)(bytes[at] ^ (1 << random.Next(8))),
                    _ => 0xFF,
                };
            }
            var (frames, error) = CaptureReading.ReadAll(bytes, bytes.Length, bufferSize: random.Next(2) == 0 ? 64 : CaptureReader.DefaultBufferSize);
            Assert.True(frames.Count <= bytes.Length / 12 + 1);
            Assert.True(error is null || error.Offset >= 0 && error.Offset <= bytes.Length, $"round {round}: {error}");
        }
    }

    /// <summary>Every offset for small files; for larger ones record boundaries and their neighbours plus a random sample.</summary>
    private static SortedSet<int> CutOffsets(int length, List<Record> records)
    {
        if (length <= 4096)
            return [.. Enumerable.Range(0, length + 1)];
        var cuts = new SortedSet<int> { 0, 1, 4, 23, 24, 25, length - 1, length };
        foreach (var r in records.Take(20).Concat(records.TakeLast(20)))
        {
            cuts.Add(r.End - 1);
            cuts.Add(r.End);
            cuts.Add(r.End + 1);
        }
        var random = new Random(length);
        while (cuts.Count < 200)
            cuts.Add(random.Next(length + 1));
        cuts.RemoveWhere(c => c > length);
        return cuts;
    }

    private readonly record struct Record(int End, bool YieldsFrame);

    /// <summary>Independent walk over the file's records (and the pcap header), stopping at the first incomplete one.</summary>
    private static List<Record> Layout(byte[] bytes)
    {
        var records = new List<Record>();
        if (BinaryPrimitives.ReadUInt32BigEndian(bytes) == 0x0A0D0D0A)
        {
            bool bigEndian = false;
            int position = 0;
            while (position + 12 <= bytes.Length)
            {
                var span = bytes.AsSpan(position);
                uint type = BinaryPrimitives.ReadUInt32BigEndian(span);
                if (type == 0x0A0D0D0A)
                    bigEndian = BinaryPrimitives.ReadUInt32BigEndian(span[8..]) == 0x1A2B3C4D;
                else if (!bigEndian)
                    type = BinaryPrimitives.ReverseEndianness(type);
                uint length = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span[4..]) : BinaryPrimitives.ReadUInt32LittleEndian(span[4..]);
                if (length > bytes.Length - position)
                    break;
                position += (int)length;
                records.Add(new Record(position, type is 2 or 3 or 6 or 0xBAD or 0x40000BAD));
            }
        }
        else
        {
            bool bigEndian = bytes[0] == 0xA1;
            int position = 24;
            records.Add(new Record(24, false));
            while (position + 16 <= bytes.Length)
            {
                var span = bytes.AsSpan(position + 8);
                uint caplen = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span);
                if (caplen > bytes.Length - position - 16)
                    break;
                position += 16 + (int)caplen;
                records.Add(new Record(position, true));
            }
        }
        return records;
    }

    private static Dictionary<string, string> SummaryRow(string capture)
    {
        var lines = File.ReadAllLines(Path.Combine(TestData.OracleFolder, "summary.tsv"));
        string[] header = lines[0].Split('\t');
        string[] row = lines.Skip(1).Select(l => l.Split('\t')).Single(r => r[0] == "pcaps/" + capture);
        return header.Zip(row).ToDictionary(p => p.First, p => p.Second);
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Xml.Linq;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Tests.Capture;

/// <summary>A small annotated capture written once and read by every interop test.</summary>
public sealed class PcapngInteropFile : IDisposable
{
    public const string Hardware = "x86_64 test-board";
    public const string Os = "Linux 6.1.0-test";
    public const string UserApplication = "survey6 0.1.0";
    public const string Comment = "interop test capture";

    public static readonly KeyValuePair<string, string>[] Metadata =
    [
        new(PcapngMetadata.ProbeId, "probe-fra-01"),
        new(PcapngMetadata.Hostname, "probe1.example.net"),
        new(PcapngMetadata.Version, "0.1.0"),
        new(PcapngMetadata.Labels, PcapngMetadata.FormatLabels([new("site", "fra"), new("role", "mirror")])),
        new(PcapngMetadata.Location, PcapngMetadata.FormatLocation(50.1109, 8.6821, "DE", "Frankfurt am Main")),
        new(PcapngMetadata.CaptureStart, PcapngMetadata.FormatTimestamp(1_700_000_000_000_000_000)),
    ];

    public static readonly (int Interface, long Timestamp, string Source, uint Flags, ulong? Drops)[] Packets =
    [
        (0, 1_700_000_000_123_456_789, "2001:db8::1", 0, null),
        (0, 1_700_000_000_123_456_790, "2001:db8::2", 0, null),
        (0, 1_700_000_001_000_000_001, "2001:db8:0:1::3", PcapngFormat.EpbFlags.DirectionInbound, 4),
        (1, 1_700_000_001_500_000_000, "2001:db8:ffff::9", PcapngFormat.EpbFlags.DirectionOutbound, null),
    ];

    public const string Destination = "2001:db8::53";

    public static readonly PcapngInterfaceInfo Eth0 = new(LinkType.Ethernet, 262144)
    {
        Name = "eth0",
        Description = "uplink mirror port",
        Filter = "ip6 and not icmp6",
        Os = Os,
        Comment = "SPAN of the core uplink",
    };

    public static readonly PcapngInterfaceInfo Tun0 = new(LinkType.Ipv6, 65535) { Name = "tun0" };

    public static readonly PcapngInterfaceStatistics Eth0Stats = new()
    {
        StartTimeNanoseconds = 1_700_000_000_000_000_000,
        EndTimeNanoseconds = 1_700_000_002_000_000_000,
        InterfaceReceived = 1000,
        InterfaceDropped = 3,
        FilterAccepted = 900,
        OsDropped = 7,
        UserDelivered = 897,
        Comment = "final counters",
    };

    public static readonly PcapngInterfaceStatistics Tun0Stats = new() { InterfaceReceived = 1, InterfaceDropped = 0 };

    private readonly string _directory;

    public PcapngInteropFile()
    {
        _directory = Path.Combine(Path.GetTempPath(), "survey6-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        FilePath = Path.Combine(_directory, "interop.pcapng");

        var section = new PcapngSectionInfo { Hardware = Hardware, Os = Os, UserApplication = UserApplication, Comment = Comment, Metadata = Metadata };
        using var writer = new PcapngWriter(File.Create(FilePath), section);
        Assert.Equal(0, writer.AddInterface(Eth0));
        Assert.Equal(1, writer.AddInterface(Tun0));
        var destination = Ipv6Address.Parse(Destination);
        for (var i = 0; i < Packets.Length; i++)
        {
            var p = Packets[i];
            var payload = Encoding.ASCII.GetBytes($"survey6 packet {i}");
            var frame = p.Interface == 0
                ? TestFrames.EthernetIpv6Udp(Ipv6Address.Parse(p.Source), destination, 49152, 49153, payload)
                : TestFrames.RawIpv6Udp(Ipv6Address.Parse(p.Source), destination, 49152, 49153, payload);
            if (p.Flags == 0 && p.Drops is null)
            {
                writer.WritePacket(p.Interface, p.Timestamp, frame, (uint)frame.Length);
            }
            else
            {
                writer.WritePacket(p.Interface, p.Timestamp, frame, (uint)frame.Length, p.Flags, p.Drops);
            }
        }

        writer.WriteInterfaceStatistics(0, 1_700_000_002_000_000_000, Eth0Stats);
        writer.WriteInterfaceStatistics(1, 1_700_000_002_000_000_000, Tun0Stats);
    }

    public string FilePath { get; }

    public string DirectoryPath => _directory;

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp file must not fail the run.
        }
    }
}

/// <summary>
/// Reads files written by <see cref="PcapngWriter"/> with the real Wireshark tools. Each test names the tool output
/// that proves a field is read: wiretap (capinfos, tshark -r) for what capture consumers see, and the pcapng file
/// dissector (tshark -X read_format:"MIME Files Format") for block-level options that wiretap does not print.
/// </summary>
public sealed class PcapngWriterInteropTests(PcapngInteropFile file) : IClassFixture<PcapngInteropFile>
{
    private const string MimeFormat = "read_format:MIME Files Format";

    [Fact]
    public void Capinfos_reports_section_options_metadata_and_interfaces()
    {
        var output = Tool.Run("capinfos", "-M", file.FilePath).AssertClean().Stdout;
        var (section, interfaces) = SplitCapinfos(output);

        Assert.Equal("pcapng", Value(section, "File type"));
        Assert.Equal("4", Value(section, "Number of packets"));
        Assert.Equal("nanoseconds (9)", Value(section, "File timestamp precision"));
        Assert.Equal("True", Value(section, "Strict time order"));
        Assert.Equal(PcapngInteropFile.Hardware, Value(section, "Capture hardware"));
        Assert.Equal(PcapngInteropFile.Os, Value(section, "Capture oper-sys"));
        Assert.Equal(PcapngInteropFile.UserApplication, Value(section, "Capture application"));
        var expectedComments = new[] { PcapngInteropFile.Comment }
            .Concat(PcapngInteropFile.Metadata.Select(m => PcapngMetadata.FormatComment(m.Key, m.Value)));
        Assert.Equal(expectedComments, Values(section, "Capture comment"));
        Assert.Equal("2", Value(section, "Number of interfaces in file"));

        Assert.Equal(2, interfaces.Count);
        var eth0 = interfaces[0];
        Assert.Equal("eth0", Value(eth0, "Name"));
        Assert.Equal(PcapngInteropFile.Eth0.Description, Value(eth0, "Description"));
        Assert.Equal("Ethernet (1 - ether)", Value(eth0, "Encapsulation"));
        Assert.Equal("262144", Value(eth0, "Capture length"));
        Assert.Equal("nanoseconds (9)", Value(eth0, "Time precision"));
        Assert.Equal(PcapngInteropFile.Eth0.Filter, Value(eth0, "Filter string"));
        Assert.Equal(PcapngInteropFile.Os, Value(eth0, "Operating system"));
        Assert.Equal(PcapngInteropFile.Eth0.Comment, Value(eth0, "Comment"));
        Assert.Equal("1", Value(eth0, "Number of stat entries"));
        Assert.Equal("3", Value(eth0, "Number of packets"));

        var tun0 = interfaces[1];
        Assert.Equal("tun0", Value(tun0, "Name"));
        Assert.Equal("65535", Value(tun0, "Capture length"));
        Assert.StartsWith("Raw IPv6", Value(tun0, "Encapsulation"), StringComparison.Ordinal);
        Assert.Equal("1", Value(tun0, "Number of stat entries"));
        Assert.Equal("1", Value(tun0, "Number of packets"));
    }

    [Fact]
    public void Capinfos_reports_nanosecond_first_and_last_packet_times()
    {
        var output = Tool.Run("capinfos", "-M", "-S", "-a", "-e", file.FilePath).AssertClean().Stdout;
        var (section, _) = SplitCapinfos(output);
        Assert.Equal("1700000000.123456789", Value(section, "First packet time"));
        Assert.Equal("1700000001.500000000", Value(section, "Last packet time"));
    }

    [Fact]
    public void Tshark_reads_packets_with_nanosecond_timestamps()
    {
        var output = Tool.Run(
            "tshark", "-n", "-o", "udp.check_checksum:TRUE", "-r", file.FilePath, "-T", "fields", "-E", "separator=/t",
            "-e", "frame.time_epoch", "-e", "frame.interface_id", "-e", "frame.interface_name", "-e", "frame.interface_description",
            "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "udp.dstport", "-e", "udp.checksum.status",
            "-e", "frame.packet_flags_direction", "-e", "frame.drop_count").AssertClean().Stdout;

        var rows = Lines(output).Select(l => l.Split('\t')).ToList();
        Assert.Equal(PcapngInteropFile.Packets.Length, rows.Count);
        for (var i = 0; i < rows.Count; i++)
        {
            var expected = PcapngInteropFile.Packets[i];
            var row = rows[i];
            Assert.Equal(EpochText(expected.Timestamp), row[0]);
            Assert.Equal(expected.Interface.ToString(CultureInfo.InvariantCulture), row[1]);
            Assert.Equal(expected.Interface == 0 ? "eth0" : "tun0", row[2]);
            Assert.Equal(expected.Interface == 0 ? PcapngInteropFile.Eth0.Description : string.Empty, row[3]);
            Assert.Equal(expected.Source, row[4]);
            Assert.Equal(PcapngInteropFile.Destination, row[5]);
            Assert.Equal("49153", row[6]);
            Assert.Equal("1", row[7]); // checksum verified good: the frames themselves are sound
            Assert.Equal(expected.Flags == 0 ? string.Empty : expected.Flags.ToString(CultureInfo.InvariantCulture), ParseNumber(row[8]));
            Assert.Equal(expected.Drops?.ToString(CultureInfo.InvariantCulture) ?? string.Empty, row[9]);
        }
    }

    [Fact]
    public void Tshark_finds_no_expert_info_in_packets_or_blocks()
    {
        // Malformed frames or a bad block/option layout would be flagged here.
        var packets = Tool.Run("tshark", "-n", "-r", file.FilePath, "-Y", "_ws.expert || _ws.malformed", "-T", "fields", "-e", "frame.number")
            .AssertClean().Stdout;
        Assert.Equal(string.Empty, packets.Trim());

        var blocks = Tool.Run(
            "tshark", "-n", "-r", file.FilePath, "-X", MimeFormat, "-Y", "_ws.expert || _ws.malformed || pcapng.block_lengths_dont_match",
            "-T", "fields", "-e", "_ws.expert.message").AssertClean().Stdout;
        Assert.Equal(string.Empty, blocks.Trim());
    }

    [Fact]
    public void Tshark_pcapng_dissector_shows_every_block_and_option()
    {
        // The file dissector walks the raw blocks; it is the only tshark 4.0 output that prints ISB counters.
        var pdml = XDocument.Parse(Tool.Run("tshark", "-n", "-r", file.FilePath, "-X", MimeFormat, "-T", "pdml").AssertClean().Stdout);
        var blocks = pdml.Descendants("field").Where(f => (string?)f.Attribute("name") == "pcapng.block").ToList();

        Assert.Equal(
            ["0a0d0d0a", "01000000", "01000000", "06000000", "06000000", "06000000", "06000000", "05000000", "05000000"],
            blocks.Select(b => Raw(b, "pcapng.block.type")));
        Assert.All(blocks, b => Assert.Equal(Show(b, "pcapng.block.length"), Show(b, "pcapng.block.length_trailer")));

        var shb = blocks[0];
        Assert.Equal("4d3c2b1a", Raw(shb, "pcapng.section_header.byte_order_magic"));
        Assert.Equal([PcapngInteropFile.Hardware], Shows(shb, "pcapng.options.option.data.hardware"));
        Assert.Equal([PcapngInteropFile.Os], Shows(shb, "pcapng.options.option.data.os"));
        Assert.Equal([PcapngInteropFile.UserApplication], Shows(shb, "pcapng.options.option.data.user_application"));
        Assert.Contains("survey6.labels=site=fra;role=mirror", Shows(shb, "pcapng.options.option.data.comment"));
        Assert.Contains("survey6.location=50.1109,8.6821,DE,Frankfurt am Main", Shows(shb, "pcapng.options.option.data.comment"));

        var eth0 = blocks[1];
        Assert.Equal("1", Show(eth0, "pcapng.interface_description.link_type"));
        Assert.Equal("262144", Show(eth0, "pcapng.interface_description.snap_length"));
        Assert.Equal("eth0", Show(eth0, "pcapng.options.option.data.interface.name"));
        Assert.Equal("09", Raw(eth0, "pcapng.options.option.data.interface.timestamp_resolution"));
        Assert.Equal("00", Raw(eth0, "pcapng.options.option.data.interface.filter.type"));
        Assert.Equal(PcapngInteropFile.Eth0.Filter, Show(eth0, "pcapng.options.option.data.interface.filter.string"));
        Assert.Equal(PcapngInteropFile.Os, Show(eth0, "pcapng.options.option.data.interface.os"));
        Assert.Equal("229", Show(blocks[2], "pcapng.interface_description.link_type"));

        var epb = blocks[5];
        Assert.Equal("4", Show(epb, "pcapng.options.option.data.packet.drop_count"));

        var isb = blocks[7];
        Assert.Equal("0", Show(isb, "pcapng.interface_id"));
        Assert.Equal("1000", Show(isb, "pcapng.options.option.data.interface.received"));
        Assert.Equal("3", Show(isb, "pcapng.options.option.data.interface.dropped"));
        Assert.Equal("900", Show(isb, "pcapng.options.option.data.interface.accepted_by_filter"));
        Assert.Equal("7", Show(isb, "pcapng.options.option.data.interface.dropped_by_os"));
        Assert.Equal("897", Show(isb, "pcapng.options.option.data.interface.delivered_to_user"));
        Assert.Equal("final counters", Show(isb, "pcapng.options.option.data.comment"));

        // tshark 4.0 names the start/end options without decoding them; check where it found them.
        var bytes = File.ReadAllBytes(file.FilePath);
        Assert.Equal(PcapngInteropFile.Eth0Stats.StartTimeNanoseconds, TimestampAt(bytes, isb, "pcapng.options.option.data.start_time"));
        Assert.Equal(PcapngInteropFile.Eth0Stats.EndTimeNanoseconds, TimestampAt(bytes, isb, "pcapng.options.option.data.end_time"));

        var tunIsb = blocks[8];
        Assert.Equal("1", Show(tunIsb, "pcapng.interface_id"));
        Assert.Equal("1", Show(tunIsb, "pcapng.options.option.data.interface.received"));
        Assert.Equal("0", Show(tunIsb, "pcapng.options.option.data.interface.dropped"));
        Assert.Empty(Fields(tunIsb, "pcapng.options.option.data.interface.dropped_by_os"));
        Assert.Empty(Fields(tunIsb, "pcapng.options.option.data.start_time"));
    }

    [Fact]
    public void Mergecap_leaves_metadata_comments_intact()
    {
        // mergecap keeps the first input's SHB but rewrites its first comment; metadata must survive that.
        var onlyMetadata = Path.Combine(file.DirectoryPath, "metadata-only.pcapng");
        using (var writer = new PcapngWriter(File.Create(onlyMetadata), new PcapngSectionInfo { Metadata = PcapngInteropFile.Metadata }))
        {
            writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = "eth1" });
            writer.WritePacket(0, 1_600_000_000_000_000_000, new byte[60], 60);
        }

        var merged = Path.Combine(file.DirectoryPath, "merged.pcapng");
        Tool.Run("mergecap", "-w", merged, onlyMetadata, file.FilePath).AssertClean();

        var (section, _) = SplitCapinfos(Tool.Run("capinfos", "-M", "-k", merged).AssertClean().Stdout);
        var metadata = Values(section, "Capture comment").Where(c => c.StartsWith(PcapngMetadata.Prefix, StringComparison.Ordinal));
        Assert.Equal(PcapngInteropFile.Metadata.Select(m => PcapngMetadata.FormatComment(m.Key, m.Value)), metadata);
    }

    [Fact]
    public void Hundred_thousand_packets_are_all_read_back()
    {
        const int Count = 100_000;
        var path = Path.Combine(file.DirectoryPath, "large.pcapng");
        var source = Ipv6Address.Parse("2001:db8::1");
        var destination = Ipv6Address.Parse(PcapngInteropFile.Destination);
        var frame = TestFrames.EthernetIpv6Udp(source, destination, 49152, 49153, new byte[64]);
        const long Start = 1_700_000_000_000_000_000;
        using (var writer = new PcapngWriter(File.Create(path), new PcapngSectionInfo { UserApplication = "survey6 test" }))
        {
            writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 262144) { Name = "eth0" });
            for (var i = 0; i < Count; i++)
            {
                // Vary the source so that the frames are not identical.
                BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(TestFrames.EthernetHeaderLength + 8 + 12), i);
                writer.WritePacket(0, Start + (i * 1001L), frame, (uint)frame.Length);
            }

            writer.WriteInterfaceStatistics(0, Start + (Count * 1001L), new PcapngInterfaceStatistics { InterfaceReceived = Count, InterfaceDropped = 0 });
        }

        var (section, interfaces) = SplitCapinfos(Tool.Run("capinfos", "-M", "-S", "-c", "-a", "-e", "-I", path).AssertClean().Stdout);
        Assert.Equal(Count.ToString(CultureInfo.InvariantCulture), Value(section, "Number of packets"));
        Assert.Equal(EpochText(Start), Value(section, "First packet time"));
        Assert.Equal(EpochText(Start + ((Count - 1) * 1001L)), Value(section, "Last packet time"));
        Assert.Equal("1", Value(Assert.Single(interfaces), "Number of stat entries"));

        // io,stat counts what tshark itself read, packet by packet.
        var io = Tool.Run("tshark", "-n", "-r", path, "-q", "-z", "io,stat,0").AssertClean().Stdout;
        var row = Lines(io).Single(l => l.Contains("<>", StringComparison.Ordinal));
        var frames = row.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[1];
        Assert.Equal(Count.ToString(CultureInfo.InvariantCulture), frames);
    }

    private static string EpochText(long ns) =>
        string.Create(CultureInfo.InvariantCulture, $"{ns / 1_000_000_000}.{ns % 1_000_000_000:D9}");

    // tshark prints bitmask fields as hex in some versions and decimal in others.
    private static string ParseNumber(string text) =>
        text.Length == 0 ? text
        : text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? Convert.ToUInt64(text[2..], 16).ToString(CultureInfo.InvariantCulture)
        : text;

    private static IEnumerable<string> Lines(string text) =>
        text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0);

    /// <summary>capinfos long report: "Key: value" section lines, then "Key = value" lines per "Interface #n info:".</summary>
    private static (List<(string Key, string Value)> Section, List<List<(string Key, string Value)>> Interfaces) SplitCapinfos(string output)
    {
        var section = new List<(string, string)>();
        var interfaces = new List<List<(string, string)>>();
        foreach (var line in Lines(output))
        {
            if (line.StartsWith("Interface #", StringComparison.Ordinal))
            {
                interfaces.Add([]);
                continue;
            }

            if (interfaces.Count > 0 && line.StartsWith(' '))
            {
                var eq = line.IndexOf(" = ", StringComparison.Ordinal);
                if (eq > 0)
                {
                    interfaces[^1].Add((line[..eq].Trim(), line[(eq + 3)..].Trim()));
                }

                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                section.Add((line[..colon].Trim(), line[(colon + 1)..].Trim()));
            }
        }

        return (section, interfaces);
    }

    private static string[] Values(List<(string Key, string Value)> entries, string key) =>
        entries.Where(e => e.Key == key).Select(e => e.Value).ToArray();

    private static string Value(List<(string Key, string Value)> entries, string key)
    {
        var values = Values(entries, key);
        Assert.True(values.Length == 1, $"Expected one '{key}' line, found {values.Length}: {string.Join(" | ", entries.Select(e => e.Key))}");
        return values[0];
    }

    private static List<XElement> Fields(XElement block, string name) =>
        block.Descendants("field").Where(f => (string?)f.Attribute("name") == name).ToList();

    private static string[] Shows(XElement block, string name) =>
        Fields(block, name).Select(f => (string?)f.Attribute("show") ?? string.Empty).ToArray();

    private static string Show(XElement block, string name) => Assert.Single(Shows(block, name));

    private static string Raw(XElement block, string name) => (string?)Assert.Single(Fields(block, name)).Attribute("value") ?? string.Empty;

    private static long TimestampAt(byte[] file, XElement block, string name)
    {
        var field = Assert.Single(Fields(block, name));
        Assert.Equal("8", (string?)field.Attribute("size"));
        var pos = int.Parse((string)field.Attribute("pos")!, CultureInfo.InvariantCulture);
        var high = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos));
        var low = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(pos + 4));
        return (long)(((ulong)high << 32) | low);
    }
}

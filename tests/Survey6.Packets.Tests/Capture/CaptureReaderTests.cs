using System.Text;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Tests.Capture;

/// <summary>CaptureReader against small hand-built files.</summary>
public class CaptureReaderTests
{
    private static byte[] Bytes(int length, int seed = 1) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 + seed)).ToArray();

    private static CaptureReader OpenBytes(byte[] bytes, int bufferSize = CaptureReader.DefaultBufferSize) =>
        CaptureReader.Open(new MemoryStream(bytes, writable: false), false, bufferSize);

    // ---------------------------------------------------------------- classic pcap

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Pcap_header_and_records(bool bigEndian, bool nanoseconds)
    {
        var first = Bytes(60);
        var second = Bytes(13, seed: 5);
        var file = new PcapBuilder(bigEndian, nanoseconds, linkType: 229, snapLength: 1500)
            .Record(1_600_000_000, 123_456, first)
            .Record(1_600_000_001, 999_999, second, originalLength: 1400)
            .Build();

        using var reader = OpenBytes(file);
        Assert.Equal(CaptureFileFormat.Pcap, reader.Format);
        Assert.Equal(LinkType.Ipv6, reader.LinkType);
        Assert.Equal(1500u, reader.SnapLength);
        Assert.Equal(bigEndian, reader.IsBigEndian);
        Assert.Equal(nanoseconds, reader.IsNanosecond);
        Assert.Equal((ushort)2, reader.VersionMajor);
        Assert.Equal((ushort)4, reader.VersionMinor);
        Assert.Null(reader.FcsLength);
        Assert.Null(reader.Section);
        var iface = Assert.Single(reader.Interfaces);
        Assert.Equal(LinkType.Ipv6, iface.LinkType);
        Assert.Equal(nanoseconds ? 1_000_000_000UL : 1_000_000UL, iface.TimestampUnitsPerSecond);

        long scale = nanoseconds ? 1 : 1000;
        Assert.True(reader.TryRead(out var frame));
        Assert.Equal(first, frame.Data.ToArray());
        Assert.Equal(1_600_000_000L * 1_000_000_000 + 123_456 * scale, frame.TimestampNanoseconds);
        Assert.True(frame.HasTimestamp);
        Assert.Equal(60u, frame.OriginalLength);
        Assert.Equal(LinkType.Ipv6, frame.LinkType);
        Assert.Equal(24, frame.FileOffset);
        Assert.Equal(FrameKind.Packet, frame.Kind);
        Assert.Equal(0, frame.InterfaceId);
        Assert.Equal(0, frame.SectionIndex);

        Assert.True(reader.TryRead(out frame));
        Assert.Equal(second, frame.Data.ToArray());
        Assert.Equal(1400u, frame.OriginalLength);
        Assert.Equal(1_600_000_001L * 1_000_000_000 + 999_999 * scale, frame.TimestampNanoseconds);
        Assert.Equal(24 + 16 + 60, frame.FileOffset);

        Assert.False(reader.TryRead(out _));
        Assert.Null(reader.Error);
        Assert.Equal(file.Length, reader.Position);
    }

    [Fact]
    public void Pcap_link_type_keeps_low_16_bits_and_reads_fcs_flag()
    {
        uint field = (2u << 28) | 0x0400_0000 | 1;
        var file = new PcapBuilder(linkType: field).Record(1, 2, Bytes(20)).Build();
        using var reader = OpenBytes(file);
        Assert.Equal(LinkType.Ethernet, reader.LinkType);
        Assert.Equal(4, reader.FcsLength);
        Assert.True(reader.TryRead(out var frame));
        Assert.Equal(LinkType.Ethernet, frame.LinkType);
    }

    [Fact]
    public void Pcap_fcs_length_bits_without_the_flag_are_ignored()
    {
        var file = new PcapBuilder(linkType: 0x3000_00E5).Build();
        using var reader = OpenBytes(file);
        Assert.Equal(LinkType.Ipv6, reader.LinkType);
        Assert.Null(reader.FcsLength);
    }

    [Fact]
    public void Pcap_record_above_snaplen_but_within_the_standard_limit_is_read()
    {
        var file = new PcapBuilder(snapLength: 100).Record(1, 0, Bytes(70_000)).Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Null(error);
        Assert.Equal(70_000, Assert.Single(frames).CapturedLength);
    }

    [Fact]
    public void Pcap_absurd_captured_length_stops_after_the_good_records()
    {
        var builder = new PcapBuilder(snapLength: 65535).Record(1, 0, Bytes(10));
        int badOffset = builder.Length;
        var file = builder.Record(2, 0, Bytes(10), capturedLength: 300_000).Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Single(frames);
        Assert.NotNull(error);
        Assert.Equal(badOffset, error.Offset);
        Assert.Equal("packet record claims 300000 captured bytes, more than the limit of 262144", error.Message);
    }

    [Fact]
    public void Pcap_big_snaplen_raises_the_limit()
    {
        var file = new PcapBuilder(snapLength: 1_000_000).Record(1, 0, Bytes(300_000)).Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Null(error);
        Assert.Single(frames);
    }

    [Fact]
    public void Pcap_cut_in_a_record()
    {
        var builder = new PcapBuilder().Record(1, 0, Bytes(10));
        int second = builder.Length;
        var file = builder.Record(2, 0, Bytes(100)).Build();

        var (frames, error) = CaptureReading.ReadAll(file, second + 50);
        Assert.Single(frames);
        Assert.Equal(new CaptureError(second, "file cut short in the middle of a packet record (needs 116 bytes, 50 present)"), error);

        (frames, error) = CaptureReading.ReadAll(file, second + 7);
        Assert.Single(frames);
        Assert.Equal(new CaptureError(second, "file cut short in the middle of a packet record header (needs 16 bytes, 7 present)"), error);

        (frames, error) = CaptureReading.ReadAll(file, 10);
        Assert.Empty(frames);
        Assert.Equal(new CaptureError(0, "file cut short in the pcap file header (needs 24 bytes, 10 present)"), error);
    }

    [Fact]
    public void Pcap_version_1_is_refused()
    {
        var (frames, error) = CaptureReading.ReadAll(new PcapBuilder(versionMajor: 1, versionMinor: 0).Record(1, 0, Bytes(4)).Build());
        Assert.Empty(frames);
        Assert.Equal("unsupported pcap version 1.0", error?.Message);
    }

    [Fact]
    public void Foreign_file_sets_error_without_throwing()
    {
        using var reader = OpenBytes(Encoding.ASCII.GetBytes("<html><body>not a capture</body></html>"));
        Assert.Equal(new CaptureError(0, "not a pcap or pcapng file (magic 0x3c68746d)"), reader.Error);
        Assert.False(reader.TryRead(out _));
    }

    [Theory]
    [InlineData(0, "not a pcap or pcapng file (the file is empty)")]
    [InlineData(3, "not a pcap or pcapng file (only 3 bytes)")]
    public void Tiny_file_sets_error(int length, string message)
    {
        var (frames, error) = CaptureReading.ReadAll(new byte[length]);
        Assert.Empty(frames);
        Assert.Equal(message, error?.Message);
    }

    // ---------------------------------------------------------------- pcapng

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Pcapng_section_interface_and_packets(bool bigEndian)
    {
        var payload = Bytes(61);
        var file = new PcapngBuilder()
            .Section(bigEndian, 1, 0,
                Opt.Text(2, "x86_64 box"), Opt.Text(3, "Linux 6.1"), Opt.Text(4, "dumpcap"),
                Opt.Text(1, "first comment"), Opt.Custom(2988, 32473, "custom text"))
            .Interface(1, 262144,
                Opt.Text(2, "eth0"), Opt.Text(3, "uplink"), Opt.Raw(11, [0, .. "ip6"u8]), Opt.Text(12, "Linux"),
                Opt.Byte(9, 9), Opt.UInt64(14, 10))
            .Enhanced(0, 1_700_000_000_123_456_789UL, payload, originalLength: 1514, Opt.Raw(2, 0, 0, 0, 1))
            .Build();

        using var reader = OpenBytes(file);
        Assert.Equal(CaptureFileFormat.Pcapng, reader.Format);
        Assert.Equal(bigEndian, reader.IsBigEndian);
        var section = reader.Section!;
        Assert.Equal(0, section.Index);
        Assert.Equal(bigEndian, section.IsBigEndian);
        Assert.Equal((ushort)1, section.VersionMajor);
        Assert.Equal(-1, section.SectionLength);
        Assert.Equal("x86_64 box", section.Hardware);
        Assert.Equal("Linux 6.1", section.OperatingSystem);
        Assert.Equal("dumpcap", section.UserApplication);
        Assert.Equal(["first comment"], section.Comments);
        var custom = Assert.Single(section.Options, o => o.IsCustom);
        Assert.Equal(2988, custom.Code);
        Assert.Equal(4 + 11, custom.Value.Length);

        // Interfaces are known straight after Open.
        var iface = Assert.Single(reader.Interfaces);
        Assert.Equal(0, iface.Id);
        Assert.Equal(LinkType.Ethernet, iface.LinkType);
        Assert.Equal(262144u, iface.SnapLength);
        Assert.Equal("eth0", iface.Name);
        Assert.Equal("uplink", iface.Description);
        Assert.Equal("ip6", iface.Filter);
        Assert.Equal("Linux", iface.OperatingSystem);
        Assert.Equal((byte)9, iface.TimestampResolution);
        Assert.Equal(1_000_000_000UL, iface.TimestampUnitsPerSecond);
        Assert.Equal(10, iface.TimestampOffsetSeconds);
        Assert.Equal(LinkType.Ethernet, reader.LinkType);
        Assert.Equal(262144u, reader.SnapLength);

        Assert.True(reader.TryRead(out var frame));
        Assert.Equal(payload, frame.Data.ToArray());
        Assert.Equal(1514u, frame.OriginalLength);
        Assert.Equal(1_700_000_010_123_456_789L, frame.TimestampNanoseconds);
        Assert.True(frame.HasTimestamp);
        Assert.Equal(LinkType.Ethernet, frame.LinkType);
        Assert.Equal(0, frame.InterfaceId);
        Assert.Equal(0, frame.SectionIndex);
        Assert.Equal(FrameKind.Packet, frame.Kind);
        Assert.False(reader.TryRead(out _));
        Assert.Null(reader.Error);
    }

    [Fact]
    public void Pcapng_sections_restart_interfaces_and_may_switch_byte_order()
    {
        var b = new PcapngBuilder()
            .Section(bigEndian: false)
            .Interface(1, 0, Opt.Text(2, "eth0"))
            .Interface(113, 0, Opt.Text(2, "any"))
            .Enhanced(1, 1_000_000, Bytes(8));
        int second = b.Length;
        b.Section(bigEndian: true, options: Opt.Text(4, "second"))
            .Interface(229, 0, Opt.Byte(9, 3))
            .Enhanced(0, 2_500, Bytes(9))
            .Section(bigEndian: false)
            .Interface(101)
            .Enhanced(0, 3_000_000, Bytes(10));
        using var reader = OpenBytes(b.Build());

        Assert.Equal(2, reader.Interfaces.Count);
        Assert.True(reader.TryRead(out var frame));
        Assert.Equal((1, 0, LinkType.LinuxSll, 1_000_000_000L), (frame.InterfaceId, frame.SectionIndex, frame.LinkType, frame.TimestampNanoseconds));

        Assert.True(reader.TryRead(out frame));
        Assert.Equal((0, 1, LinkType.Ipv6, 2_500_000_000L), (frame.InterfaceId, frame.SectionIndex, frame.LinkType, frame.TimestampNanoseconds));
        Assert.Equal(9, frame.Data.Length);
        Assert.True(reader.IsBigEndian);
        Assert.Equal(1, reader.Section!.Index);
        Assert.Equal(second, reader.Section.FileOffset);
        Assert.Equal("second", reader.Section.UserApplication);
        var iface = Assert.Single(reader.Interfaces);
        Assert.Equal(1, iface.SectionIndex);

        Assert.True(reader.TryRead(out frame));
        Assert.Equal((0, 2, LinkType.Raw, 3_000_000_000L), (frame.InterfaceId, frame.SectionIndex, frame.LinkType, frame.TimestampNanoseconds));
        Assert.False(reader.IsBigEndian);
        Assert.False(reader.TryRead(out _));
        Assert.Null(reader.Error);
    }

    [Theory]
    [InlineData(6, 1_500_000_123UL, 1_500_000_123_000L)]
    [InlineData(9, 1_500_000_123UL, 1_500_000_123L)]
    [InlineData(3, 1_500_123UL, 1_500_123_000_000L)]
    [InlineData(0, 17UL, 17_000_000_000L)]
    [InlineData(12, 1_234_567_890_123_456UL, 1_234_567_890_123L)] // picoseconds truncate like Wireshark
    [InlineData(19, 15_000_000_000_000_000_000UL, 1_500_000_000L)]
    [InlineData(0x80 | 10, 1025UL, 1_000_976_562L)] // 1 + 1/1024 s, truncated
    [InlineData(0x80 | 0, 5UL, 5_000_000_000L)]
    [InlineData(0x80 | 9, 513UL, 1_001_953_125L)] // 2^-9 s is an exact number of ns
    [InlineData(0x80 | 40, (3UL << 40) + (1UL << 39), 3_500_000_000L)]
    public void Pcapng_timestamp_resolutions(byte tsresol, ulong units, long expected)
    {
        var file = new PcapngBuilder().Section().Interface(1, 0, Opt.Byte(9, tsresol)).Enhanced(0, units, Bytes(4)).Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Null(error);
        Assert.Equal(expected, Assert.Single(frames).TimestampNanoseconds);
    }

    [Theory]
    [InlineData(100L, 100_000_001_000L)]
    [InlineData(-1L, -999_999_000L)]
    public void Pcapng_timestamp_offset_is_added(long offsetSeconds, long expected)
    {
        var file = new PcapngBuilder().Section().Interface(1, 0, Opt.UInt64(14, (ulong)offsetSeconds)).Enhanced(0, 1, Bytes(4)).Build();
        var (frames, _) = CaptureReading.ReadAll(file);
        Assert.Equal(expected, Assert.Single(frames).TimestampNanoseconds);
    }

    [Fact]
    public void Pcapng_simple_packet_blocks()
    {
        var file = new PcapngBuilder()
            .Section(bigEndian: true)
            .Interface(1, 64)
            .Simple(100, Bytes(64))          // cut to the snaplen
            .Simple(10, Bytes(10))           // padding is not data
            .Section()
            .Interface(1, 0)
            .Simple(200, Bytes(8))           // cut to what the block holds
            .Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Null(error);
        Assert.Equal([64, 10, 8], frames.Select(f => f.CapturedLength));
        Assert.Equal([100u, 10u, 200u], frames.Select(f => f.OriginalLength));
        Assert.All(frames, f => Assert.False(f.HasTimestamp));
        Assert.All(frames, f => Assert.Equal(0, f.InterfaceId));
        Assert.Equal(FrameRecord.Hash(Bytes(64)), frames[0].DataHash);
        Assert.Equal(FrameRecord.Hash(Bytes(10)), frames[1].DataHash);
    }

    [Fact]
    public void Pcapng_obsolete_packet_block()
    {
        var file = new PcapngBuilder().Section(bigEndian: true).Interface(9).Interface(1)
            .Obsolete(1, 7, 2_000_001, Bytes(30), originalLength: 40).Build();
        var frame = Assert.Single(CaptureReading.ReadAll(file).Frames);
        Assert.Equal((1, LinkType.Ethernet, 30, 40u, 2_000_001_000L),
            (frame.InterfaceId, frame.LinkType, frame.CapturedLength, frame.OriginalLength, frame.TimestampNanoseconds));
    }

    [Fact]
    public void Pcapng_interface_statistics()
    {
        var file = new PcapngBuilder().Section(bigEndian: true).Interface(1, 0, Opt.Byte(9, 9))
            .Enhanced(0, 5, Bytes(4))
            .Statistics(0, 1_000_000_000_000,
                Opt.Timestamp(2, 900_000_000_000), Opt.Timestamp(3, 1_000_000_000_000), Opt.UInt64(4, 100),
                Opt.UInt64(5, 2), Opt.UInt64(6, 90), Opt.UInt64(7, 3), Opt.UInt64(8, 88), Opt.Text(1, "final"))
            .Statistics(7, 2_000_000)
            .Build();
        using var reader = OpenBytes(file);
        Assert.Empty(reader.Statistics);
        var frames = CaptureReading.ReadAll(reader);
        Assert.Single(frames);
        Assert.Null(reader.Error);

        Assert.Equal(2, reader.Statistics.Count);
        var stats = reader.Statistics[0];
        Assert.Equal((0, 0), (stats.SectionIndex, stats.InterfaceId));
        Assert.Equal(1_000_000_000_000L, stats.TimestampNanoseconds);
        Assert.Equal(900_000_000_000L, stats.StartTimeNanoseconds);
        Assert.Equal(1_000_000_000_000L, stats.EndTimeNanoseconds);
        Assert.Equal(100UL, stats.InterfaceReceived);
        Assert.Equal(2UL, stats.InterfaceDropped);
        Assert.Equal(90UL, stats.FilterAccepted);
        Assert.Equal(3UL, stats.OsDropped);
        Assert.Equal(88UL, stats.UserDelivered);
        Assert.Contains(stats.Options, o => o.Code == 1 && o.AsString() == "final");

        // Undeclared interface: kept, read as microseconds.
        var orphan = reader.Statistics[1];
        Assert.Equal(7, orphan.InterfaceId);
        Assert.Equal(2_000_000_000L, orphan.TimestampNanoseconds);
        Assert.Null(orphan.InterfaceReceived);
        Assert.Null(orphan.StartTimeNanoseconds);
    }

    [Fact]
    public void Pcapng_custom_blocks_are_frames()
    {
        var file = new PcapngBuilder()
            .Section()
            .Custom(32473, "hello"u8.ToArray())                                    // before any IDB: allowed
            .Interface(1)
            .Custom(99, Bytes(8), copyable: false, Opt.Text(1, "note"))
            .Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Null(error);
        Assert.Equal(2, frames.Count);
        Assert.All(frames, f => Assert.Equal(FrameKind.Custom, f.Kind));
        Assert.All(frames, f => Assert.False(f.HasTimestamp));
        Assert.All(frames, f => Assert.Equal(-1, f.InterfaceId));
        // tshark's length: everything after the enterprise number, padding and options included.
        Assert.Equal((8, 8u, 32473u), (frames[0].CapturedLength, frames[0].OriginalLength, frames[0].EnterpriseNumber));
        Assert.Equal(FrameRecord.Hash([.. "hello"u8, 0, 0, 0]), frames[0].DataHash);
        Assert.Equal((8 + 12, 99u), (frames[1].CapturedLength, frames[1].EnterpriseNumber));
    }

    [Fact]
    public void Pcapng_skips_name_resolution_secrets_and_unknown_blocks()
    {
        var file = new PcapngBuilder()
            .Section()
            .Other(4, [1, 0, 8, 0, 192, 0, 2, 1, (byte)'a', (byte)'b', 0, 0, 0, 0, 0, 0])
            .Interface(1)
            .Other(0x0A, Bytes(20))
            .Other(0x8000_1234, Bytes(33))
            .Enhanced(0, 1, Bytes(5))
            .Other(0x0000_0101, [])
            .Build();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Null(error);
        Assert.Single(frames);
    }

    [Fact]
    public void Pcapng_unknown_block_bigger_than_the_buffer_is_streamed_past()
    {
        var file = new PcapngBuilder().Section().Interface(1)
            .Other(0x8000_0001, Bytes(5000))
            .Enhanced(0, 1, Bytes(40))
            .Build();
        var (frames, error) = CaptureReading.ReadAll(file, bufferSize: 64);
        Assert.Null(error);
        Assert.Equal(40, Assert.Single(frames).CapturedLength);

        // Cut inside the big block.
        (frames, error) = CaptureReading.ReadAll(file, count: 3000, bufferSize: 64);
        Assert.Empty(frames);
        Assert.StartsWith("file cut short in the middle of a block of type 0x80000001 (needs 5012 bytes,", error?.Message);
    }

    [Fact]
    public void Pcapng_packets_larger_than_the_buffer_grow_it()
    {
        var big = Bytes(70_000);
        var file = new PcapngBuilder().Section().Interface(1).Enhanced(0, 1, Bytes(10)).Enhanced(0, 2, big).Enhanced(0, 3, Bytes(3)).Build();
        var (frames, error) = CaptureReading.ReadAll(file, bufferSize: 64);
        Assert.Null(error);
        Assert.Equal([10, 70_000, 3], frames.Select(f => f.CapturedLength));
        Assert.Equal(FrameRecord.Hash(big), frames[1].DataHash);
    }

    [Fact]
    public void Pcapng_malformed_options_end_the_option_list_only()
    {
        // An if_name claiming 200 bytes inside a 24-byte option area.
        var w = new ByteWriter(false);
        w.U32(1).U32(44).U16(1).U16(0).U32(0).U16(2).U16(4).Bytes("eth0"u8).U16(3).U16(200).Bytes(new byte[12]).U32(44);
        var file = new PcapngBuilder().Section().Raw(w.ToArray()).Enhanced(0, 1, Bytes(4)).Build();
        using var reader = OpenBytes(file);
        Assert.Equal("eth0", reader.Interfaces[0].Name);
        Assert.Null(reader.Interfaces[0].Description);
        Assert.Single(CaptureReading.ReadAll(reader));
        Assert.Null(reader.Error);
    }

    [Fact]
    public void Empty_pcapng_has_metadata_and_no_frames()
    {
        var file = new PcapngBuilder().Section().Interface(1, 262144).Build();
        using var reader = OpenBytes(file);
        Assert.Single(reader.Interfaces);
        Assert.False(reader.TryRead(out _));
        Assert.Null(reader.Error);
    }

    public static TheoryData<string, string> DamagedBlocks() => new()
    {
        { "length-not-multiple-of-4", "Enhanced Packet Block has a total length of 46, not a multiple of 4" },
        { "length-below-minimum", "Enhanced Packet Block has a total length of 8, less than the minimum of 32" },
        { "length-above-limit", "Enhanced Packet Block has a total length of 4294967292, more than the limit of 268435456" },
        { "trailer-mismatch", "Enhanced Packet Block has a trailing length 52 that differs from its leading length 48" },
        { "caplen-exceeds-block", "Enhanced Packet Block of 48 bytes is too small for 17 captured bytes" },
        { "unknown-interface", "Enhanced Packet Block refers to interface 3, but section 0 declares only 1" },
        { "unknown-interface-pb", "Packet Block refers to interface 1, but section 0 declares only 1" },
        { "spb-before-idb", "Simple Packet Block appears before any Interface Description Block in its section" },
        { "version-2", "unsupported pcapng version 2.0 (only major version 1 is readable)" },
        { "bad-byte-order-magic", "Section Header Block has an unknown byte-order magic 0x01020304" },
        { "tsresol-too-fine", "Interface Description Block has an unsupported timestamp resolution (if_tsresol 0x14)" },
        { "cut-in-block", "file cut short in the middle of an Enhanced Packet Block (needs 48 bytes, 20 present)" },
        { "cut-in-header", "file cut short in the middle of a block header (needs 8 bytes, 5 present)" },
    };

    [Theory]
    [MemberData(nameof(DamagedBlocks))]
    public void Pcapng_damage_stops_after_the_good_frames(string damage, string message)
    {
        var builder = new PcapngBuilder().Section().Interface(1, 0).Enhanced(0, 1, Bytes(16));
        int offset = builder.Length;
        var w = builder.Writer();
        switch (damage)
        {
            case "length-not-multiple-of-4":
                builder.Raw(w.U32(6).U32(46).ToArray());
                break;
            case "length-below-minimum":
                builder.Raw(w.U32(6).U32(8).ToArray());
                break;
            case "length-above-limit":
                builder.Raw(w.U32(6).U32(0xFFFF_FFFC).ToArray());
                break;
            case "trailer-mismatch":
                builder.Raw(w.U32(6).U32(48).U32(0).U64(0).U32(16).U32(16).Bytes(new byte[16]).U32(52).ToArray());
                break;
            case "caplen-exceeds-block":
                builder.Raw(w.U32(6).U32(48).U32(0).U64(0).U32(17).U32(17).Bytes(new byte[16]).U32(48).ToArray());
                break;
            case "unknown-interface":
                builder.Enhanced(3, 1, Bytes(16));
                break;
            case "unknown-interface-pb":
                builder.Obsolete(1, 0, 1, Bytes(16));
                break;
            case "spb-before-idb":
                builder.Section();
                offset = builder.Length;
                builder.Simple(4, Bytes(4));
                break;
            case "version-2":
                builder.Section(major: 2).Interface(1).Enhanced(0, 1, Bytes(4));
                break;
            case "bad-byte-order-magic":
                builder.Raw(w.U32(0x0A0D0D0A).U32(28).U32(0x04030201).U32(1).U64(0).U32(28).ToArray());
                break;
            case "tsresol-too-fine":
                builder.Interface(1, 0, Opt.Byte(9, 20));
                break;
            case "cut-in-block":
                builder.Enhanced(0, 1, Bytes(16));
                builder = new PcapngBuilder().Raw(builder.Build()[..(offset + 20)]);
                break;
            case "cut-in-header":
                builder.Enhanced(0, 1, Bytes(16));
                builder = new PcapngBuilder().Raw(builder.Build()[..(offset + 5)]);
                break;
        }
        // Good frames after the damage must not be reached.
        var file = new PcapngBuilder().Raw(builder.Build()).Enhanced(0, 1, Bytes(16)).Build();
        if (damage.StartsWith("cut", StringComparison.Ordinal))
            file = builder.Build();

        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Single(frames);
        Assert.Equal(new CaptureError(offset, message), error);
    }

    [Fact]
    public void Pcapng_bad_byte_order_magic_at_the_start_is_not_pcapng()
    {
        var w = new ByteWriter(false);
        var file = w.U32(0x0A0D0D0A).U32(28).U32(0x11223344).U32(1).U64(0).U32(28).ToArray();
        var (frames, error) = CaptureReading.ReadAll(file);
        Assert.Empty(frames);
        Assert.Equal(new CaptureError(0, "not a pcap or pcapng file (pcapng byte-order magic 0x44332211)"), error);
    }

    // ---------------------------------------------------------------- plumbing

    [Fact]
    public void Open_path_reads_a_file()
    {
        string path = Path.Combine(Path.GetTempPath(), $"capture-reader-{Guid.NewGuid():N}.pcap");
        try
        {
            File.WriteAllBytes(path, new PcapBuilder().Record(1, 2, Bytes(33)).Record(3, 4, Bytes(44)).Build());
            using (var reader = CaptureReader.Open(path))
                Assert.Equal(2, CaptureReading.ReadAll(reader).Count);
            // Disposal closed the file.
            File.Delete(path);
        }
        finally
        {
            if (File.Exists(path))
                File.Delete(path);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dispose_closes_the_stream_unless_left_open(bool leaveOpen)
    {
        var stream = new ChunkedStream(new PcapBuilder().Record(1, 2, Bytes(3)).Build(), 1, 7);
        var reader = CaptureReader.Open(stream, leaveOpen);
        Assert.True(reader.TryRead(out _));
        reader.Dispose();
        reader.Dispose();
        Assert.Equal(!leaveOpen, stream.Disposed);
        Assert.Throws<ObjectDisposedException>(() => reader.TryRead(out _));
    }

    [Fact]
    public void Reading_does_not_allocate_per_packet()
    {
        const int Count = 20_000;
        var pcap = new PcapBuilder();
        var pcapng = new PcapngBuilder().Section().Interface(1, 0, Opt.Byte(9, 9)).Interface(101, 0, Opt.Byte(9, 0x80 | 20));
        for (int i = 0; i < Count; i++)
        {
            var data = Bytes(40 + i % 200, i);
            pcap.Record((uint)i, (uint)i, data);
            pcapng.Enhanced((uint)(i % 2), (ulong)i * 1000, data);
            if (i % 100 == 0)
                pcapng.Simple((uint)data.Length, data);
        }

        foreach (var (file, bufferSize) in new[] { (pcap.Build(), 1 << 20), (pcapng.Build(), 1 << 20), (pcapng.Build(), 4096) })
        {
            // Warm up (JIT, pool) with a first pass. Each measured pass reads a reader opened before it, so that
            // opening one (its buffer) is not counted.
            Drain(file, bufferSize);
            var readers = Enumerable.Range(0, 3)
                .Select(_ => CaptureReader.Open(new MemoryStream(file, writable: false), false, bufferSize)).ToArray();
            var frames = new int[readers.Length];
            var totals = new long[readers.Length];
            try
            {
                Assert.Equal(0, Allocations.Fewest(pass =>
                {
                    while (readers[pass].TryRead(out var frame))
                    {
                        totals[pass] += frame.Data.Length + frame.TimestampNanoseconds;
                        frames[pass]++;
                    }
                }, readers.Length));
            }
            finally
            {
                foreach (var reader in readers)
                    reader.Dispose();
            }
            Assert.True(frames[0] >= Count);
            Assert.NotEqual(0, totals[0]);
        }

        static void Drain(byte[] file, int bufferSize)
        {
            using var reader = CaptureReader.Open(new MemoryStream(file, writable: false), false, bufferSize);
            while (reader.TryRead(out _))
            {
            }
        }
    }
}

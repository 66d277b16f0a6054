using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Tests.Capture;

public class PcapngWriterTests
{
    private static readonly PcapngSectionInfo EmptySection = new();

    [Fact]
    public void Empty_section_is_a_bare_28_byte_shb()
    {
        var bytes = Write(EmptySection, _ => { });

        Assert.Equal(Hex("""
            0A0D0D0A 1C000000
            4D3C2B1A 0100 0000 FFFFFFFF FFFFFFFF
            1C000000
            """), bytes);
    }

    [Fact]
    public void Small_file_matches_hand_computed_bytes()
    {
        var section = new PcapngSectionInfo
        {
            Comment = "c",
            Metadata = [new("k", "v")],
            Hardware = "hw",
            Os = "os12",
            UserApplication = "app",
        };

        var bytes = Write(section, w =>
        {
            var id = w.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 262144) { Name = "eth0", Filter = "ip6" });
            Assert.Equal(0, id);
            w.WritePacket(0, 0x0123456789ABCDEF, [1, 2, 3, 4, 5], 60);
            w.WritePacket(0, 0x0123456789ABCDF0, [0xAA, 0xBB, 0xCC, 0xDD], 4, PcapngFormat.EpbFlags.DirectionInbound, 7);
            w.WriteInterfaceStatistics(0, 0x0000000200000003, new PcapngInterfaceStatistics
            {
                StartTimeNanoseconds = 0x0000000100000000,
                InterfaceReceived = 10,
                InterfaceDropped = 2,
            });
        });

        var expected = Hex("""
            0A0D0D0A 50000000
            4D3C2B1A 0100 0000 FFFFFFFF FFFFFFFF
            0100 0100 63 000000
            0100 0B00 73757276 6579362E 6B3D76 00
            0200 0200 6877 0000
            0300 0400 6F733132
            0400 0300 617070 00
            0000 0000
            50000000

            01000000 30000000
            0100 0000 00000400
            0200 0400 65746830
            0900 0100 09 000000
            0B00 0400 00 697036
            0000 0000
            30000000

            06000000 28000000
            00000000 67452301 EFCDAB89 05000000 3C000000
            0102030405 000000
            28000000

            06000000 3C000000
            00000000 67452301 F0CDAB89 04000000 04000000
            AABBCCDD
            0200 0400 01000000
            0400 0800 07000000 00000000
            0000 0000
            3C000000

            05000000 40000000
            00000000 02000000 03000000
            0200 0800 01000000 00000000
            0400 0800 0A000000 00000000
            0500 0800 02000000 00000000
            0000 0000
            40000000
            """);

        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(bytes));
    }

    [Fact]
    public void Statistics_with_no_counters_have_no_options()
    {
        var bytes = Write(EmptySection, w =>
        {
            w.AddInterface(new PcapngInterfaceInfo(LinkType.Raw, 0));
            w.WriteInterfaceStatistics(0, 5, new PcapngInterfaceStatistics());
        });

        var isb = PcapngStructure.Parse(bytes)[^1];
        Assert.Equal(PcapngFormat.BlockType.InterfaceStatistics, isb.Type);
        Assert.Equal(24, isb.Length);
        Assert.Empty(isb.Options);
    }

    [Fact]
    public void Interface_without_strings_still_declares_nanosecond_resolution()
    {
        var bytes = Write(EmptySection, w => w.AddInterface(new PcapngInterfaceInfo(LinkType.Ipv6, 1500)));

        var idb = PcapngStructure.Parse(bytes)[1];
        Assert.Equal(Hex("E500 0000 DC050000"), idb.FixedBody);
        var option = Assert.Single(idb.Options);
        Assert.Equal(PcapngFormat.IdbOption.TimestampResolution, option.Code);
        Assert.Equal([PcapngFormat.TimestampResolutionNanoseconds], option.Value);
    }

    [Fact]
    public void Strings_are_utf8_without_terminator()
    {
        var section = new PcapngSectionInfo { Os = "Düsseldorf-Ω" };
        var bytes = Write(section, w => w.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Description = "Größe" }));

        var blocks = PcapngStructure.Parse(bytes);
        var os = Assert.Single(blocks[0].Options);
        Assert.Equal(PcapngFormat.ShbOption.Os, os.Code);
        Assert.Equal(Encoding.UTF8.GetBytes("Düsseldorf-Ω"), os.Value);
        Assert.Equal(14, os.Value.Length);
        var description = blocks[1].Options.Single(o => o.Code == PcapngFormat.IdbOption.Description);
        Assert.Equal(Encoding.UTF8.GetBytes("Größe"), description.Value);
    }

    [Fact]
    public void Section_options_keep_comment_then_metadata_order()
    {
        var section = new PcapngSectionInfo
        {
            Comment = "free text",
            Metadata =
            [
                new(PcapngMetadata.ProbeId, "probe-7"),
                new(PcapngMetadata.Labels, PcapngMetadata.FormatLabels([new("site", "fra"), new("rack", "r1")])),
            ],
        };

        var shb = PcapngStructure.Parse(Write(section, _ => { }))[0];
        var comments = shb.Options.Where(o => o.Code == PcapngFormat.Option.Comment).Select(o => Encoding.UTF8.GetString(o.Value)).ToArray();
        Assert.Equal(["free text", "survey6.probe_id=probe-7", "survey6.labels=site=fra;rack=r1"], comments);
    }

    [Fact]
    public void Metadata_is_never_the_first_comment()
    {
        var shb = PcapngStructure.Parse(Write(new PcapngSectionInfo { Metadata = [new(PcapngMetadata.ProbeId, "p")] }, _ => { }))[0];
        var comments = shb.Options.Select(o => Encoding.UTF8.GetString(o.Value)).ToArray();
        Assert.Equal([PcapngMetadata.DefaultSectionComment, "survey6.probe_id=p"], comments);

        var plain = PcapngStructure.Parse(Write(new PcapngSectionInfo { Hardware = "h" }, _ => { }))[0];
        Assert.DoesNotContain(plain.Options, o => o.Code == PcapngFormat.Option.Comment);
    }

    [Fact]
    public void Packet_larger_than_the_buffer_is_written_identically()
    {
        var big = Enumerable.Range(0, 1001).Select(i => (byte)i).ToArray();
        void Body(PcapngWriter w)
        {
            w.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = "x" });
            w.WritePacket(0, 1, [9, 9, 9], 3);
            w.WritePacket(0, 2, big, 1500, 0x00010002, 3);
            w.WritePacket(0, 3, big, 1001);
            w.WritePacket(0, 4, [], 0);
        }

        var unbuffered = Write(EmptySection, Body, bufferSize: 256);
        var buffered = Write(EmptySection, Body);

        Assert.Equal(buffered, unbuffered);
        var epbs = PcapngStructure.Parse(buffered).Where(b => b.Type == PcapngFormat.BlockType.EnhancedPacket).ToList();
        Assert.Equal(4, epbs.Count);
        Assert.Equal(big, epbs[1].PacketData);
        Assert.Equal(28 + 1004 + 8 + 12 + 4 + 4, epbs[1].Length);
        Assert.Equal(32, epbs[3].Length);
    }

    [Fact]
    public void Random_packets_and_buffer_sizes_give_well_formed_identical_output()
    {
        Gen.Select(Gen.Int[0, 700].Array[1, 30], Gen.Int[256, 4096]).Sample((lengths, bufferSize) =>
        {
            void Body(PcapngWriter w)
            {
                w.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0));
                for (var i = 0; i < lengths.Length; i++)
                {
                    var data = Payload(i, lengths[i]);
                    if (i % 3 == 0)
                    {
                        w.WritePacket(0, i, data, (uint)data.Length, (uint)i, (ulong)i * 2);
                    }
                    else
                    {
                        w.WritePacket(0, i, data, (uint)data.Length + 10);
                    }
                }
            }

            var small = Write(EmptySection, Body, bufferSize);
            var large = Write(EmptySection, Body);
            Assert.Equal(large, small);

            var epbs = PcapngStructure.Parse(small).Where(b => b.Type == PcapngFormat.BlockType.EnhancedPacket).ToList();
            Assert.Equal(lengths.Length, epbs.Count);
            for (var i = 0; i < lengths.Length; i++)
            {
                Assert.Equal(Payload(i, lengths[i]), epbs[i].PacketData);
                Assert.Equal(i % 3 == 0 ? 2 : 0, epbs[i].Options.Count);
            }
        }, iter: 200);

        static byte[] Payload(int seed, int length) => Enumerable.Range(seed, length).Select(b => (byte)(b * 31)).ToArray();
    }

    [Fact]
    public void Option_values_of_every_length_are_padded()
    {
        for (var n = 0; n <= 9; n++)
        {
            var text = new string('a', n);
            var bytes = Write(new PcapngSectionInfo { Hardware = text, Comment = text }, _ => { });
            var shb = PcapngStructure.Parse(bytes)[0];
            Assert.Equal(8 + 16 + (2 * (4 + PcapngFormat.Pad(n))) + 4 + 4, shb.Length);
            Assert.All(shb.Options, o => Assert.Equal(n, o.Value.Length));
        }
    }

    [Fact]
    public void Bytes_written_tracks_the_stream_after_flush()
    {
        using var stream = new MemoryStream();
        using var writer = new PcapngWriter(stream, EmptySection, leaveOpen: true);
        Assert.Equal(28, writer.BytesWritten);
        Assert.Equal(0, stream.Length);
        writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0));
        writer.WritePacket(0, 1, new byte[100], 100);
        writer.Flush();
        Assert.Equal(stream.Length, writer.BytesWritten);
        Assert.Equal(28 + 32 + 132, stream.Length);
    }

    [Fact]
    public void Dispose_closes_the_stream_unless_left_open()
    {
        var closed = new MemoryStream();
        new PcapngWriter(closed, EmptySection).Dispose();
        Assert.False(closed.CanWrite);
        Assert.Equal(28, closed.ToArray().Length);

        var open = new MemoryStream();
        var writer = new PcapngWriter(open, EmptySection, leaveOpen: true);
        writer.Dispose();
        writer.Dispose();
        Assert.True(open.CanWrite);
        Assert.Equal(28, open.Length);
        Assert.Throws<ObjectDisposedException>(() => writer.WritePacket(0, 0, [], 0));
    }

    [Fact]
    public async Task Async_flush_and_dispose_write_everything()
    {
        var stream = new MemoryStream();
        await using (var writer = new PcapngWriter(stream, EmptySection, leaveOpen: true))
        {
            writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0));
            await writer.FlushAsync();
            Assert.Equal(28 + 32, stream.Length);
            writer.WritePacket(0, 1, [1], 1);
        }

        Assert.Equal(28 + 32 + 36, stream.Length);
        Assert.Equal(3, PcapngStructure.Parse(stream.ToArray()).Count);
    }

    [Fact]
    public void Interface_ids_are_sequential()
    {
        Write(EmptySection, w =>
        {
            Assert.Equal(0, w.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0)));
            Assert.Equal(1, w.AddInterface(new PcapngInterfaceInfo(LinkType.Raw, 0)));
            Assert.Equal(2, w.InterfaceCount);
        });
    }

    [Fact]
    public void Invalid_arguments_are_rejected()
    {
        using var writer = new PcapngWriter(new MemoryStream(), EmptySection);
        writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 64));

        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(1, 0, [], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(-1, 0, [], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, -1, [], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, 0, new byte[65], 65));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, 0, new byte[10], 9));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WriteInterfaceStatistics(3, 0, new PcapngInterfaceStatistics()));
        Assert.Throws<ArgumentOutOfRangeException>(
            () => writer.WriteInterfaceStatistics(0, 0, new PcapngInterfaceStatistics { StartTimeNanoseconds = -5 }));
        Assert.Throws<ArgumentException>(() => writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = new string('n', 65536) }));
        Assert.Equal(1, writer.InterfaceCount);

        Assert.Throws<ArgumentException>(() => new PcapngWriter(new MemoryStream(), new PcapngSectionInfo { Metadata = [new("bad key", "v")] }));
        Assert.Throws<ArgumentException>(() => new PcapngWriter(new MemoryStream([], writable: false), EmptySection));
    }

    [Fact]
    public void Option_of_exactly_65535_bytes_is_accepted()
    {
        var bytes = Write(new PcapngSectionInfo { Comment = new string('x', 65535) }, _ => { });
        var option = Assert.Single(PcapngStructure.Parse(bytes)[0].Options);
        Assert.Equal(65535, option.Value.Length);
    }

    [Fact]
    public void Writing_packets_does_not_allocate()
    {
        using var writer = new PcapngWriter(Stream.Null, EmptySection, leaveOpen: true);
        writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0));
        var frame = new byte[1514];
        writer.WritePacket(0, 1, frame, 1514);
        writer.WritePacket(0, 1, frame, 1514, 1, 0);

        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                writer.WritePacket(0, i, frame.AsSpan(0, i % 1514), 1514);
                writer.WritePacket(0, i, frame, 1514, PcapngFormat.EpbFlags.DirectionOutbound, (ulong)i);
            }

            writer.Flush();
        }));
    }

    [Fact]
    public void Metadata_comments_round_trip()
    {
        var comment = PcapngMetadata.FormatComment(PcapngMetadata.Labels, "a=b;c=d");
        Assert.Equal("survey6.labels=a=b;c=d", comment);
        Assert.True(PcapngMetadata.TryParseComment(comment, out var key, out var value));
        Assert.Equal(PcapngMetadata.Labels, key);
        Assert.Equal("a=b;c=d", value);

        Assert.True(PcapngMetadata.TryParseComment("survey6.hostname=", out key, out value));
        Assert.Equal((PcapngMetadata.Hostname, string.Empty), (key, value));
        Assert.False(PcapngMetadata.TryParseComment("survey6.=x", out _, out _));
        Assert.False(PcapngMetadata.TryParseComment("survey6.novalue", out _, out _));
        Assert.False(PcapngMetadata.TryParseComment("other comment", out _, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a=b")]
    [InlineData("a;b")]
    [InlineData("a b")]
    [InlineData("a\nb")]
    public void Metadata_keys_with_separators_are_rejected(string key)
    {
        Assert.ThrowsAny<ArgumentException>(() => PcapngMetadata.FormatComment(key, "v"));
    }

    [Fact]
    public void Metadata_value_helpers_use_documented_forms()
    {
        Assert.Equal("site=fra;rack=r1", PcapngMetadata.FormatLabels([new("site", "fra"), new("rack", "r1")]));
        Assert.Throws<ArgumentException>(() => PcapngMetadata.FormatLabels([new("k", "a;b")]));
        Assert.Equal("50.1109,8.6821,DE,Frankfurt am Main", PcapngMetadata.FormatLocation(50.1109, 8.6821, "DE", "Frankfurt am Main"));
        Assert.Equal("-33.8688,151.2093,AU,Sydney, NSW", PcapngMetadata.FormatLocation(-33.8688, 151.2093, "AU", "Sydney, NSW"));
        Assert.Equal(",,,", PcapngMetadata.FormatLocation(null, null, null, null));
        Assert.Equal("2023-11-14T22:13:20.123456789Z", PcapngMetadata.FormatTimestamp(1_700_000_000_123_456_789));
        Assert.Equal("1970-01-01T00:00:00.000000000Z", PcapngMetadata.FormatTimestamp(0));
        Assert.Equal("1969-12-31T23:59:59.999999999Z", PcapngMetadata.FormatTimestamp(-1));
    }

    [Fact]
    public void Timestamps_are_high_word_first()
    {
        var bytes = Write(EmptySection, w =>
        {
            w.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0));
            w.WritePacket(0, 1_700_000_000_123_456_789, [], 0);
        });

        var epb = PcapngStructure.Parse(bytes)[^1];
        var high = BinaryPrimitives.ReadUInt32LittleEndian(epb.FixedBody.AsSpan(4));
        var low = BinaryPrimitives.ReadUInt32LittleEndian(epb.FixedBody.AsSpan(8));
        Assert.Equal(1_700_000_000_123_456_789UL, ((ulong)high << 32) | low);
    }

    internal static byte[] Write(PcapngSectionInfo section, Action<PcapngWriter> body, int bufferSize = PcapngWriter.DefaultBufferSize)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapngWriter(stream, section, leaveOpen: true, bufferSize))
        {
            body(writer);
        }

        return stream.ToArray();
    }

    private static byte[] Hex(string text) =>
        Convert.FromHexString(string.Concat(text.Where(Uri.IsHexDigit)));
}

using System.Buffers.Binary;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Tests.Capture;

internal sealed record PcapngOption(ushort Code, byte[] Value);

internal sealed record PcapngBlock(uint Type, int Offset, int Length, byte[] FixedBody, byte[] PacketData, IReadOnlyList<PcapngOption> Options);

/// <summary>
/// Strict little-endian pcapng walker for tests: asserts every structural rule the writer must honour
/// (lengths match and are multiples of 4, options padded with zeros and closed by opt_endofopt, nothing left over).
/// </summary>
internal static class PcapngStructure
{
    public static List<PcapngBlock> Parse(byte[] file)
    {
        var blocks = new List<PcapngBlock>();
        var at = 0;
        while (at < file.Length)
        {
            Assert.True(file.Length - at >= PcapngFormat.MinimumBlockLength, $"Truncated block header at {at}.");
            var type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            var length = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 4)));
            Assert.True(length >= PcapngFormat.MinimumBlockLength, $"Block at {at} is {length} bytes.");
            Assert.True(length % 4 == 0, $"Block at {at} has length {length}, not a multiple of 4.");
            Assert.True(at + length <= file.Length, $"Block at {at} runs past the end of the file.");
            var trailer = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + length - 4));
            Assert.Equal((uint)length, trailer);
            if (blocks.Count == 0)
            {
                Assert.Equal(PcapngFormat.BlockType.SectionHeader, type);
            }

            var body = file.AsSpan(at + PcapngFormat.BlockHeaderLength, length - PcapngFormat.MinimumBlockLength);
            var fixedLength = type switch
            {
                PcapngFormat.BlockType.SectionHeader => PcapngFormat.FixedBodyLength.SectionHeader,
                PcapngFormat.BlockType.InterfaceDescription => PcapngFormat.FixedBodyLength.InterfaceDescription,
                PcapngFormat.BlockType.EnhancedPacket => PcapngFormat.FixedBodyLength.EnhancedPacket,
                PcapngFormat.BlockType.InterfaceStatistics => PcapngFormat.FixedBodyLength.InterfaceStatistics,
                _ => throw new InvalidOperationException($"Unexpected block type 0x{type:X8} at {at}."),
            };
            var fixedBody = body[..fixedLength].ToArray();
            var rest = body[fixedLength..];
            var data = Array.Empty<byte>();
            if (type == PcapngFormat.BlockType.EnhancedPacket)
            {
                var captured = (int)BinaryPrimitives.ReadUInt32LittleEndian(fixedBody.AsSpan(12));
                var padded = PcapngFormat.Pad(captured);
                Assert.True(padded <= rest.Length, $"EPB at {at} captured length {captured} exceeds the block.");
                data = rest[..captured].ToArray();
                Assert.True(rest[captured..padded].IndexOfAnyExcept((byte)0) < 0, $"Non-zero packet padding at {at}.");
                rest = rest[padded..];
            }

            blocks.Add(new PcapngBlock(type, at, length, fixedBody, data, ParseOptions(rest, at)));
            at += length;
        }

        return blocks;
    }

    private static List<PcapngOption> ParseOptions(ReadOnlySpan<byte> options, int blockOffset)
    {
        var list = new List<PcapngOption>();
        if (options.IsEmpty)
        {
            return list;
        }

        var at = 0;
        while (true)
        {
            Assert.True(options.Length - at >= PcapngFormat.OptionHeaderLength, $"Options of block {blockOffset} end without opt_endofopt.");
            var code = BinaryPrimitives.ReadUInt16LittleEndian(options[at..]);
            var length = BinaryPrimitives.ReadUInt16LittleEndian(options[(at + 2)..]);
            at += PcapngFormat.OptionHeaderLength;
            if (code == PcapngFormat.Option.EndOfOptions)
            {
                Assert.Equal(0, length);
                Assert.True(at == options.Length, $"Bytes after opt_endofopt in block {blockOffset}.");
                Assert.NotEmpty(list);
                return list;
            }

            var padded = PcapngFormat.Pad(length);
            Assert.True(at + padded <= options.Length, $"Option {code} of block {blockOffset} overruns the block.");
            list.Add(new PcapngOption(code, options.Slice(at, length).ToArray()));
            Assert.True(options[(at + length)..(at + padded)].IndexOfAnyExcept((byte)0) < 0, $"Non-zero option padding in block {blockOffset}.");
            at += padded;
        }
    }
}

using System.Buffers.Binary;
using static Survey6.Packets.Capture.PcapngFormat;

namespace Survey6.Packets.Capture;

// pcapng format. Offsets are from the start of the block (type at 0, total length at 4, body at 8).
public sealed partial class CaptureReader
{
    // Field offsets are PcapngFormat's (ShbOffset, EpbOffset, ...). The smallest legal block of each kind: its fixed fields and the trailer.
    private const int ShbMinLength = ShbOffset.Options + PcapngFormat.BlockTrailerLength;
    private const int IdbMinLength = IdbOffset.Options + PcapngFormat.BlockTrailerLength;
    private const int EpbMinLength = EpbOffset.Data + PcapngFormat.BlockTrailerLength;
    private const int PbMinLength = PbOffset.Data + PcapngFormat.BlockTrailerLength;
    private const int SpbMinLength = SpbOffset.Data + PcapngFormat.BlockTrailerLength;
    private const int IsbMinLength = IsbOffset.Options + PcapngFormat.BlockTrailerLength;
    private const int CbMinLength = CbOffset.Data + PcapngFormat.BlockTrailerLength;

    private const ulong NanosecondsPerSecond = 1_000_000_000;

    // Above this many units per second, remainder * 10^9 no longer fits in 64 bits.
    private const ulong MaxUnitsForNarrowFraction = ulong.MaxValue / NanosecondsPerSecond;

    /// <summary>What the hot path needs to know about an interface, kept apart from the public metadata object.</summary>
    private struct InterfaceState
    {
        public LinkType LinkType;
        public uint SnapLength;
        public ulong UnitsPerSecond;

        // 10^9 / UnitsPerSecond when that is exact (10^-n for n <= 9, 2^-n for n <= 9), else 0.
        public ulong NanosecondsPerUnit;
        public long OffsetNanoseconds;
    }

    private static readonly InterfaceState MicrosecondInterface = new()
    {
        UnitsPerSecond = 1_000_000,
        NanosecondsPerUnit = 1_000,
    };

    private CaptureSection? _section;
    private int _sectionIndex = -1;
    private InterfaceState[] _interfaces = new InterfaceState[4];
    private int _interfaceCount;

    /// <summary>
    /// Processes blocks until one yields a frame. With <paramref name="metadataOnly"/> stops (without consuming)
    /// in front of the first frame-producing block instead; used by Open to read the file's leading metadata.
    /// </summary>
    private bool ReadPcapngBlocks(out CaptureFrame frame, bool metadataOnly)
    {
        frame = default;
        while (true)
        {
            long offset = Position;
            if (!Ensure(PcapngFormat.BlockHeaderLength))
            {
                if (Available == 0)
                    return End();
                return Fail(offset, $"file cut short in the middle of a block header (needs {PcapngFormat.BlockHeaderLength} bytes, {Available} present)");
            }

            var header = Unread(PcapngFormat.BlockHeaderLength);
            // The SHB type reads the same in both byte orders, so it is recognised before its byte order is known.
            uint type = ReadUInt32(header[BlockOffset.Type..]);
            if (type == PcapngFormat.BlockType.SectionHeader)
            {
                if (!ReadSectionHeader(offset))
                    return false;
                continue;
            }

            uint totalLength = ReadUInt32(header[BlockOffset.TotalLength..]);
            bool yieldsFrame = type is PcapngFormat.BlockType.EnhancedPacket or PcapngFormat.BlockType.SimplePacket or PcapngFormat.BlockType.Packet
                or PcapngFormat.BlockType.CustomCopyable or PcapngFormat.BlockType.CustomNoCopy;
            if (yieldsFrame && metadataOnly)
                return false;
            if (!CheckBlockLength(offset, type, totalLength))
                return false;
            int length = (int)totalLength;

            if (!yieldsFrame && type is not (PcapngFormat.BlockType.InterfaceDescription or PcapngFormat.BlockType.InterfaceStatistics))
            {
                // NRB, DSB and block types we do not know: nothing in them matters here.
                if (!SkipBlock(offset, type, totalLength))
                    return false;
                continue;
            }

            if (!Ensure(length))
                return Fail(offset, $"file cut short in the middle of {BlockName(type)} (needs {length} bytes, {Available} present)");
            var block = Unread(length);
            uint trailer = ReadUInt32(block[(length - PcapngFormat.BlockTrailerLength)..]);
            if (trailer != totalLength)
                return Fail(offset, $"{Capitalized(BlockName(type))} has a trailing length {trailer} that differs from its leading length {totalLength}");

            bool ok = type switch
            {
                PcapngFormat.BlockType.EnhancedPacket => ReadEnhancedPacket(block, offset, out frame),
                PcapngFormat.BlockType.SimplePacket => ReadSimplePacket(block, offset, out frame),
                PcapngFormat.BlockType.Packet => ReadObsoletePacket(block, offset, out frame),
                PcapngFormat.BlockType.CustomCopyable or PcapngFormat.BlockType.CustomNoCopy => ReadCustom(block, offset, out frame),
                PcapngFormat.BlockType.InterfaceDescription => ReadInterfaceDescription(block, offset),
                _ => ReadInterfaceStatistics(block, offset),
            };
            if (!ok)
                return false;
            Consume(length);
            if (yieldsFrame)
                return true;
        }
    }

    private bool ReadSectionHeader(long offset)
    {
        if (!Ensure(ShbOffset.MajorVersion))
            return Fail(offset, $"file cut short in the middle of a Section Header Block (needs {ShbMinLength} bytes, {Available} present)");

        var start = Unread(ShbOffset.MajorVersion);
        bool bigEndian;
        // Compare in file byte order: 1A 2B 3C 4D means big-endian.
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(start[ShbOffset.ByteOrderMagic..]);
        if (magic == PcapngFormat.ByteOrderMagic)
            bigEndian = true;
        else if (magic == PcapngFormat.ByteOrderMagicSwapped)
            bigEndian = false;
        else if (offset == 0)
            return Fail(offset, $"not a pcap or pcapng file (pcapng byte-order magic 0x{magic:x8})");
        else
            return Fail(offset, $"Section Header Block has an unknown byte-order magic 0x{magic:x8}");

        _bigEndian = bigEndian;
        uint totalLength = ReadUInt32(start[BlockOffset.TotalLength..]);
        if (!CheckBlockLength(offset, PcapngFormat.BlockType.SectionHeader, totalLength))
            return false;
        int length = (int)totalLength;
        if (!Ensure(length))
            return Fail(offset, $"file cut short in the middle of a Section Header Block (needs {length} bytes, {Available} present)");

        var block = Unread(length);
        uint trailer = ReadUInt32(block[(length - PcapngFormat.BlockTrailerLength)..]);
        if (trailer != totalLength)
            return Fail(offset, $"Section Header Block has a trailing length {trailer} that differs from its leading length {totalLength}");

        ushort major = ReadUInt16(block[ShbOffset.MajorVersion..]);
        ushort minor = ReadUInt16(block[ShbOffset.MinorVersion..]);
        // A different major version may lay blocks out differently; tshark stops there too.
        if (major != PcapngFormat.MajorVersion)
            return Fail(offset, $"unsupported pcapng version {major}.{minor} (only major version {PcapngFormat.MajorVersion} is readable)");

        long sectionLength = (long)ReadUInt64(block[ShbOffset.SectionLength..]);
        var options = ParseOptions(block[ShbOffset.Options..(length - PcapngFormat.BlockTrailerLength)]);
        _sectionIndex++;
        _section = new CaptureSection(_sectionIndex, offset, bigEndian, major, minor, sectionLength, options);
        _interfaceCount = 0;
        Consume(length);
        return true;
    }

    private bool CheckBlockLength(long offset, uint type, uint totalLength)
    {
        int minimum = type switch
        {
            PcapngFormat.BlockType.SectionHeader => ShbMinLength,
            PcapngFormat.BlockType.InterfaceDescription => IdbMinLength,
            PcapngFormat.BlockType.EnhancedPacket => EpbMinLength,
            PcapngFormat.BlockType.Packet => PbMinLength,
            PcapngFormat.BlockType.SimplePacket => SpbMinLength,
            PcapngFormat.BlockType.InterfaceStatistics => IsbMinLength,
            PcapngFormat.BlockType.CustomCopyable or PcapngFormat.BlockType.CustomNoCopy => CbMinLength,
            _ => PcapngFormat.MinimumBlockLength,
        };
        if (totalLength < minimum)
            return Fail(offset, $"{Capitalized(BlockName(type))} has a total length of {totalLength}, less than the minimum of {minimum}");
        if (totalLength % 4 != 0)
            return Fail(offset, $"{Capitalized(BlockName(type))} has a total length of {totalLength}, not a multiple of 4");
        if (totalLength > MaxRecordLength)
            return Fail(offset, $"{Capitalized(BlockName(type))} has a total length of {totalLength}, more than the limit of {MaxRecordLength}");
        return true;
    }

    private bool SkipBlock(long offset, uint type, uint totalLength)
    {
        int length = (int)totalLength;
        if (length <= _buffer.Length)
        {
            if (!Ensure(length))
                return Fail(offset, $"file cut short in the middle of {BlockName(type)} (needs {length} bytes, {Available} present)");
            Consume(length - PcapngFormat.BlockTrailerLength);
        }
        else
        {
            // Bigger than the buffer: stream past the body rather than growing the buffer for bytes nobody reads.
            long body = length - PcapngFormat.BlockTrailerLength;
            long skipped = Skip(body);
            if (skipped < body || !Ensure(PcapngFormat.BlockTrailerLength))
                return Fail(offset, $"file cut short in the middle of {BlockName(type)} (needs {length} bytes, {skipped + Available} present)");
        }

        uint trailer = ReadUInt32(Unread(PcapngFormat.BlockTrailerLength));
        if (trailer != totalLength)
            return Fail(offset, $"{Capitalized(BlockName(type))} has a trailing length {trailer} that differs from its leading length {totalLength}");
        Consume(PcapngFormat.BlockTrailerLength);
        return true;
    }

    private bool ReadEnhancedPacket(ReadOnlySpan<byte> block, long offset, out CaptureFrame frame) =>
        ReadPacket(block, offset, ReadUInt32(block[EpbOffset.InterfaceId..]), "an", "Enhanced Packet Block", out frame);

    /// <summary>The obsolete Packet Block is an EPB with a 16-bit interface id (and a drop count nobody reads): <see cref="PbOffset"/>.</summary>
    private bool ReadObsoletePacket(ReadOnlySpan<byte> block, long offset, out CaptureFrame frame) =>
        ReadPacket(block, offset, ReadUInt16(block[PbOffset.InterfaceId..]), "a", "Packet Block", out frame);

    /// <summary>The fields an EPB and a PB share, at the same offsets (<see cref="PbOffset"/> is defined by <see cref="EpbOffset"/>).</summary>
    private bool ReadPacket(ReadOnlySpan<byte> block, long offset, uint interfaceId, string article, string blockName, out CaptureFrame frame)
    {
        frame = default;
        if (interfaceId >= (uint)_interfaceCount)
            return Fail(offset, UnknownInterfaceMessage(article + " " + blockName, interfaceId));
        uint capturedLength = ReadUInt32(block[EpbOffset.CapturedLength..]);
        if (capturedLength > (uint)(block.Length - EpbMinLength))
            return Fail(offset, $"{blockName} of {block.Length} bytes is too small for {capturedLength} captured bytes");

        ref readonly var state = ref _interfaces[interfaceId];
        ulong timestamp = ((ulong)ReadUInt32(block[EpbOffset.TimestampHigh..]) << 32) | ReadUInt32(block[EpbOffset.TimestampLow..]);
        frame.Data = block.Slice(EpbOffset.Data, (int)capturedLength);
        frame.TimestampNanoseconds = ToNanoseconds(in state, timestamp);
        frame.HasTimestamp = true;
        frame.OriginalLength = ReadUInt32(block[EpbOffset.OriginalLength..]);
        frame.LinkType = state.LinkType;
        frame.InterfaceId = (int)interfaceId;
        frame.SectionIndex = _sectionIndex;
        frame.FileOffset = offset;
        frame.Kind = FrameKind.Packet;
        return true;
    }

    private bool ReadSimplePacket(ReadOnlySpan<byte> block, long offset, out CaptureFrame frame)
    {
        frame = default;
        // An SPB implicitly belongs to interface 0.
        if (_interfaceCount == 0)
            return Fail(offset, "Simple Packet Block appears before any Interface Description Block in its section");

        ref readonly var state = ref _interfaces[0];
        uint originalLength = ReadUInt32(block[SpbOffset.OriginalLength..]);
        // No captured-length field: it is the original length cut to the snaplen (0 = unlimited) and to the block.
        uint capturedLength = originalLength;
        if (state.SnapLength != 0 && capturedLength > state.SnapLength)
            capturedLength = state.SnapLength;
        uint room = (uint)(block.Length - SpbMinLength);
        if (capturedLength > room)
            capturedLength = room;

        frame.Data = block.Slice(SpbOffset.Data, (int)capturedLength);
        frame.HasTimestamp = false;
        frame.OriginalLength = originalLength;
        frame.LinkType = state.LinkType;
        frame.InterfaceId = 0;
        frame.SectionIndex = _sectionIndex;
        frame.FileOffset = offset;
        frame.Kind = FrameKind.Packet;
        return true;
    }

    private bool ReadCustom(ReadOnlySpan<byte> block, long offset, out CaptureFrame frame)
    {
        frame = default;
        // tshark reports a custom block's length as everything after the enterprise number (data, options and
        // padding alike): total length - 16. Data covers exactly that so Data.Length matches its frame.cap_len.
        int payloadLength = block.Length - CbMinLength;
        frame.Data = block.Slice(CbOffset.Data, payloadLength);
        frame.HasTimestamp = false;
        frame.OriginalLength = (uint)payloadLength;
        frame.InterfaceId = -1;
        frame.SectionIndex = _sectionIndex;
        frame.FileOffset = offset;
        frame.Kind = FrameKind.Custom;
        frame.EnterpriseNumber = ReadUInt32(block[CbOffset.PrivateEnterpriseNumber..]);
        return true;
    }

    private bool ReadInterfaceDescription(ReadOnlySpan<byte> block, long offset)
    {
        var linkType = (LinkType)ReadUInt16(block[IdbOffset.LinkType..]);
        uint snapLength = ReadUInt32(block[IdbOffset.SnapLength..]);
        var options = ParseOptions(block[IdbOffset.Options..^PcapngFormat.BlockTrailerLength]);

        // Like Wireshark, the first occurrence of a single-valued option wins.
        byte resolution = TimestampResolutionMicroseconds;
        long offsetSeconds = 0;
        bool haveResolution = false, haveOffset = false;
        foreach (var option in options)
        {
            if (option.Code == PcapngFormat.IdbOption.TimestampResolution && option.Value.Length == 1 && !haveResolution)
            {
                resolution = option.Value[0];
                haveResolution = true;
            }
            else if (option.Code == PcapngFormat.IdbOption.TimestampOffset && option.Value.Length == 8 && !haveOffset)
            {
                offsetSeconds = (long)ReadUInt64(option.Value);
                haveOffset = true;
            }
        }

        int exponent = resolution & 0x7F;
        bool powerOfTwo = (resolution & 0x80) != 0;
        // Beyond these, units per second do not fit in 64 bits.
        if (powerOfTwo ? exponent > 63 : exponent > 19)
            return Fail(offset, $"Interface Description Block has an unsupported timestamp resolution (if_tsresol 0x{resolution:x2})");
        ulong unitsPerSecond = powerOfTwo ? 1UL << exponent : Pow10(exponent);

        var state = new InterfaceState
        {
            LinkType = linkType,
            SnapLength = snapLength,
            UnitsPerSecond = unitsPerSecond,
            NanosecondsPerUnit = unitsPerSecond <= NanosecondsPerSecond && NanosecondsPerSecond % unitsPerSecond == 0
                ? NanosecondsPerSecond / unitsPerSecond
                : 0,
            OffsetNanoseconds = unchecked(offsetSeconds * (long)NanosecondsPerSecond),
        };

        if (_interfaceCount == _interfaces.Length)
            Array.Resize(ref _interfaces, _interfaces.Length * 2);
        int id = _interfaceCount++;
        _interfaces[id] = state;
        _section!.InterfaceList.Add(new CaptureInterface(id, _sectionIndex, linkType, snapLength, options, resolution, unitsPerSecond, offsetSeconds));
        return true;
    }

    private bool ReadInterfaceStatistics(ReadOnlySpan<byte> block, long offset)
    {
        uint interfaceId = ReadUInt32(block[IsbOffset.InterfaceId..]);
        // Statistics for an undeclared interface are kept (they hurt nobody); their times are read as microseconds.
        var state = interfaceId < (uint)_interfaceCount ? _interfaces[interfaceId] : MicrosecondInterface;
        ulong timestamp = ((ulong)ReadUInt32(block[IsbOffset.TimestampHigh..]) << 32) | ReadUInt32(block[IsbOffset.TimestampLow..]);
        var options = ParseOptions(block[IsbOffset.Options..^PcapngFormat.BlockTrailerLength]);

        long? startTime = null, endTime = null;
        foreach (var option in options)
        {
            if (option.Value.Length != 8)
                continue;
            // Option timestamps are two 32-bit words (high, low) in section byte order, like the block's own.
            ulong value = ((ulong)ReadUInt32(option.Value) << 32) | ReadUInt32(option.Value.AsSpan(TimestampLowWordOffset));
            if (option.Code == PcapngFormat.IsbOption.StartTime && startTime is null)
                startTime = ToNanoseconds(in state, value);
            else if (option.Code == PcapngFormat.IsbOption.EndTime && endTime is null)
                endTime = ToNanoseconds(in state, value);
        }

        _statistics.Add(new InterfaceStatistics(_sectionIndex, (int)Math.Min(interfaceId, int.MaxValue), offset,
            ToNanoseconds(in state, timestamp), options, startTime, endTime)
        {
            InterfaceReceived = CaptureText.FindUInt64(options, PcapngFormat.IsbOption.InterfaceReceived, _bigEndian),
            InterfaceDropped = CaptureText.FindUInt64(options, PcapngFormat.IsbOption.InterfaceDropped, _bigEndian),
            FilterAccepted = CaptureText.FindUInt64(options, PcapngFormat.IsbOption.FilterAccepted, _bigEndian),
            OsDropped = CaptureText.FindUInt64(options, PcapngFormat.IsbOption.OsDropped, _bigEndian),
            UserDelivered = CaptureText.FindUInt64(options, PcapngFormat.IsbOption.UserDelivered, _bigEndian),
        });
        return true;
    }

    /// <summary>
    /// Splits an option list. Options are metadata only, so a malformed list ends at the last well-formed option
    /// instead of stopping the whole file.
    /// </summary>
    private List<CaptureOption> ParseOptions(ReadOnlySpan<byte> region)
    {
        var options = new List<CaptureOption>();
        int position = 0;
        while (region.Length - position >= PcapngFormat.OptionHeaderLength)
        {
            ushort code = ReadUInt16(region[(position + OptionOffset.Code)..]);
            ushort valueLength = ReadUInt16(region[(position + OptionOffset.Length)..]);
            if (code == PcapngFormat.Option.EndOfOptions)
                break;
            position += OptionOffset.Value;
            if (valueLength > region.Length - position)
                break;
            options.Add(new CaptureOption(code, region.Slice(position, valueLength).ToArray()));
            // Values are padded to 4 bytes; the padding of the last option may be missing in sloppy files.
            position += (valueLength + 3) & ~3;
        }
        return options;
    }

    /// <summary>Block timestamp to nanoseconds since the epoch, truncating like Wireshark for resolutions finer than 1 ns.</summary>
    private static long ToNanoseconds(in InterfaceState state, ulong timestamp)
    {
        ulong nanoseconds;
        if (state.NanosecondsPerUnit != 0)
        {
            // Exact; also equal to seconds * 10^9 + fraction in wrap-around arithmetic.
            nanoseconds = unchecked(timestamp * state.NanosecondsPerUnit);
        }
        else
        {
            ulong units = state.UnitsPerSecond;
            ulong seconds = timestamp / units;
            ulong remainder = timestamp - seconds * units;
            ulong fraction = units <= MaxUnitsForNarrowFraction
                ? remainder * NanosecondsPerSecond / units
                : (ulong)((UInt128)remainder * NanosecondsPerSecond / units);
            nanoseconds = unchecked(seconds * NanosecondsPerSecond + fraction);
        }
        return unchecked((long)nanoseconds + state.OffsetNanoseconds);
    }

    private static ulong Pow10(int exponent)
    {
        ulong value = 1;
        for (int i = 0; i < exponent; i++)
            value *= 10;
        return value;
    }

    private string UnknownInterfaceMessage(string blockName, uint interfaceId) =>
        $"{Capitalized(blockName)} refers to interface {interfaceId}, but section {_sectionIndex} declares only {_interfaceCount}";

    private static string BlockName(uint type) => type switch
    {
        PcapngFormat.BlockType.SectionHeader => "a Section Header Block",
        PcapngFormat.BlockType.InterfaceDescription => "an Interface Description Block",
        PcapngFormat.BlockType.Packet => "a Packet Block",
        PcapngFormat.BlockType.SimplePacket => "a Simple Packet Block",
        PcapngFormat.BlockType.NameResolution => "a Name Resolution Block",
        PcapngFormat.BlockType.InterfaceStatistics => "an Interface Statistics Block",
        PcapngFormat.BlockType.EnhancedPacket => "an Enhanced Packet Block",
        PcapngFormat.BlockType.DecryptionSecrets => "a Decryption Secrets Block",
        PcapngFormat.BlockType.CustomCopyable or PcapngFormat.BlockType.CustomNoCopy => "a Custom Block",
        _ => $"a block of type 0x{type:x8}",
    };

    // "an Enhanced Packet Block" -> "Enhanced Packet Block" at the start of a message.
    private static string Capitalized(string name)
    {
        int space = name.IndexOf(' ', StringComparison.Ordinal);
        string rest = name[(space + 1)..];
        return rest.StartsWith("block of type", StringComparison.Ordinal) ? "Block" + rest[5..] : rest;
    }
}

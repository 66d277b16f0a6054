using System.Buffers.Binary;
using System.Text;

namespace Survey6.Packets.Capture;

/// <summary>One pcapng option (code, raw value without padding) as found in the file.</summary>
/// <remarks>Multi-byte values are in the byte order of the section they came from; use the typed properties
/// of the owning block for the standard options.</remarks>
public sealed record CaptureOption(ushort Code, byte[] Value)
{
    /// <summary>opt_comment.</summary>
    public const ushort Comment = 1;

    /// <summary>Custom options (UTF-8 / binary, copyable or not); the value starts with a 4-byte Private Enterprise Number.</summary>
    public const ushort CustomString = 2988, CustomBinary = 2989, CustomStringNoCopy = 19372, CustomBinaryNoCopy = 19373;

    /// <summary>True for the four custom option codes.</summary>
    public bool IsCustom => Code is CustomString or CustomBinary or CustomStringNoCopy or CustomBinaryNoCopy;

    /// <summary>The value decoded as UTF-8 (invalid sequences replaced), trailing NULs removed.</summary>
    public string AsString() => CaptureText.Decode(Value);
}

/// <summary>Metadata of one pcapng section (its Section Header Block and the interfaces declared in it).</summary>
public sealed class CaptureSection
{
    internal readonly List<CaptureInterface> InterfaceList = [];

    internal CaptureSection(int index, long fileOffset, bool bigEndian, ushort versionMajor, ushort versionMinor,
        long sectionLength, IReadOnlyList<CaptureOption> options)
    {
        Index = index;
        FileOffset = fileOffset;
        IsBigEndian = bigEndian;
        VersionMajor = versionMajor;
        VersionMinor = versionMinor;
        SectionLength = sectionLength;
        Options = options;
    }

    /// <summary>Zero-based section number in the file.</summary>
    public int Index { get; }

    /// <summary>Byte offset of the Section Header Block.</summary>
    public long FileOffset { get; }

    /// <summary>Byte order of every block in the section.</summary>
    public bool IsBigEndian { get; }

    public ushort VersionMajor { get; }

    public ushort VersionMinor { get; }

    /// <summary>Section length from the header; -1 means "not specified".</summary>
    public long SectionLength { get; }

    /// <summary>Every option of the Section Header Block in file order (including comments and custom options).</summary>
    public IReadOnlyList<CaptureOption> Options { get; }

    /// <summary>shb_hardware.</summary>
    public string? Hardware => CaptureText.Find(Options, 2);

    /// <summary>shb_os.</summary>
    public string? OperatingSystem => CaptureText.Find(Options, 3);

    /// <summary>shb_userappl.</summary>
    public string? UserApplication => CaptureText.Find(Options, 4);

    /// <summary>opt_comment values.</summary>
    public IEnumerable<string> Comments => CaptureText.All(Options, CaptureOption.Comment);

    /// <summary>Interfaces declared so far in this section, indexed by interface id.</summary>
    public IReadOnlyList<CaptureInterface> Interfaces => InterfaceList;
}

/// <summary>A pcapng Interface Description Block (or the implicit single interface of a classic pcap file).</summary>
public sealed class CaptureInterface
{
    internal CaptureInterface(int id, int sectionIndex, LinkType linkType, uint snapLength, IReadOnlyList<CaptureOption> options,
        byte timestampResolution, ulong timestampUnitsPerSecond, long timestampOffsetSeconds)
    {
        Id = id;
        SectionIndex = sectionIndex;
        LinkType = linkType;
        SnapLength = snapLength;
        Options = options;
        TimestampResolution = timestampResolution;
        TimestampUnitsPerSecond = timestampUnitsPerSecond;
        TimestampOffsetSeconds = timestampOffsetSeconds;
    }

    /// <summary>Interface id within its section (the value EPBs refer to).</summary>
    public int Id { get; }

    public int SectionIndex { get; }

    /// <summary>Link type (raw 16-bit LINKTYPE_ value; may be outside the named enum members).</summary>
    public LinkType LinkType { get; }

    /// <summary>Maximum captured length; 0 means no limit.</summary>
    public uint SnapLength { get; }

    /// <summary>Every option of the Interface Description Block in file order.</summary>
    public IReadOnlyList<CaptureOption> Options { get; }

    /// <summary>if_tsresol as stored (bit 7 clear: 10^-n seconds, set: 2^-n); 6 when the option is absent.</summary>
    public byte TimestampResolution { get; }

    /// <summary>Timestamp units per second derived from <see cref="TimestampResolution"/>.</summary>
    public ulong TimestampUnitsPerSecond { get; }

    /// <summary>if_tsoffset: seconds added to every timestamp (0 when absent).</summary>
    public long TimestampOffsetSeconds { get; }

    /// <summary>if_name.</summary>
    public string? Name => CaptureText.Find(Options, 2);

    /// <summary>if_description.</summary>
    public string? Description => CaptureText.Find(Options, 3);

    /// <summary>if_filter when it is a libpcap filter string (filter type byte 0); BPF programs stay in <see cref="Options"/>.</summary>
    public string? Filter
    {
        get
        {
            foreach (var option in Options)
            {
                if (option.Code == 11 && option.Value.Length >= 1 && option.Value[0] == 0)
                    return CaptureText.Decode(option.Value.AsSpan(1));
            }
            return null;
        }
    }

    /// <summary>if_os.</summary>
    public string? OperatingSystem => CaptureText.Find(Options, 12);

    /// <summary>if_hardware.</summary>
    public string? Hardware => CaptureText.Find(Options, 15);

    /// <summary>if_fcslen in bytes, when present.</summary>
    public byte? FcsLength
    {
        get
        {
            foreach (var option in Options)
            {
                if (option.Code == 13 && option.Value.Length == 1)
                    return option.Value[0];
            }
            return null;
        }
    }
}

/// <summary>A pcapng Interface Statistics Block. Times are nanoseconds since the Unix epoch.</summary>
public sealed class InterfaceStatistics
{
    internal InterfaceStatistics(int sectionIndex, int interfaceId, long fileOffset, long timestampNanoseconds,
        IReadOnlyList<CaptureOption> options, long? startTime, long? endTime)
    {
        SectionIndex = sectionIndex;
        InterfaceId = interfaceId;
        FileOffset = fileOffset;
        TimestampNanoseconds = timestampNanoseconds;
        Options = options;
        StartTimeNanoseconds = startTime;
        EndTimeNanoseconds = endTime;
    }

    public int SectionIndex { get; }

    /// <summary>Interface id within the section (may name an interface that was never declared).</summary>
    public int InterfaceId { get; }

    public long FileOffset { get; }

    /// <summary>When the statistics were taken (block timestamp, interface resolution and offset applied).</summary>
    public long TimestampNanoseconds { get; }

    /// <summary>Every option of the block in file order.</summary>
    public IReadOnlyList<CaptureOption> Options { get; }

    /// <summary>isb_starttime.</summary>
    public long? StartTimeNanoseconds { get; }

    /// <summary>isb_endtime.</summary>
    public long? EndTimeNanoseconds { get; }

    /// <summary>isb_ifrecv.</summary>
    public ulong? InterfaceReceived { get; internal init; }

    /// <summary>isb_ifdrop.</summary>
    public ulong? InterfaceDropped { get; internal init; }

    /// <summary>isb_filteraccept.</summary>
    public ulong? FilterAccepted { get; internal init; }

    /// <summary>isb_osdrop.</summary>
    public ulong? OsDropped { get; internal init; }

    /// <summary>isb_usrdeliv.</summary>
    public ulong? UserDelivered { get; internal init; }
}

/// <summary>Text helpers shared by the metadata types.</summary>
internal static class CaptureText
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    // Writers differ on whether strings carry a terminating NUL; strip it so comparisons work.
    public static string Decode(ReadOnlySpan<byte> value) => Utf8.GetString(value.TrimEnd((byte)0));

    public static string? Find(IReadOnlyList<CaptureOption> options, ushort code)
    {
        foreach (var option in options)
        {
            if (option.Code == code)
                return Decode(option.Value);
        }
        return null;
    }

    public static IEnumerable<string> All(IReadOnlyList<CaptureOption> options, ushort code)
    {
        foreach (var option in options)
        {
            if (option.Code == code)
                yield return Decode(option.Value);
        }
    }

    public static ulong? FindUInt64(IReadOnlyList<CaptureOption> options, ushort code, bool bigEndian)
    {
        foreach (var option in options)
        {
            if (option.Code == code && option.Value.Length == 8)
                return bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(option.Value) : BinaryPrimitives.ReadUInt64LittleEndian(option.Value);
        }
        return null;
    }
}

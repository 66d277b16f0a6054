namespace Survey6.Packets.Capture;

// Public record-level API shared by both formats.
public sealed partial class CaptureReader
{
    private static readonly IReadOnlyList<CaptureInterface> NoInterfaces = [];
    private readonly List<InterfaceStatistics> _statistics = [];

    /// <summary>Container format (meaningless when <see cref="Error"/> says the file is neither format).</summary>
    public CaptureFileFormat Format { get; private set; }

    /// <summary>
    /// Classic pcap: the header's link type (low 16 bits; the FCS flag bits above are in <see cref="FcsLength"/>).
    /// pcapng: link type of interface 0 of the current section, or <see cref="LinkType.Null"/> when none is declared yet.
    /// Frames carry their own link type, which is what a dissector should use.
    /// </summary>
    public LinkType LinkType => Format == CaptureFileFormat.Pcap || Interfaces.Count == 0 ? _pcapLinkType : Interfaces[0].LinkType;

    /// <summary>Classic pcap: the header's snapshot length. pcapng: that of interface 0 of the current section (0 when none).</summary>
    public uint SnapLength => Format == CaptureFileFormat.Pcap || Interfaces.Count == 0 ? _pcapSnapLength : Interfaces[0].SnapLength;

    /// <summary>Classic pcap: bytes of FCS at the end of every packet when the header's FCS flag says so; otherwise null.</summary>
    public int? FcsLength { get; private set; }

    /// <summary>Classic pcap: true for the nanosecond magic (a1b23c4d). pcapng: false (see each interface's resolution).</summary>
    public bool IsNanosecond { get; private set; }

    /// <summary>Byte order of the pcap header, or of the current pcapng section.</summary>
    public bool IsBigEndian => _bigEndian;

    /// <summary>Format version of the pcap header, or of the current pcapng section.</summary>
    public ushort VersionMajor => _section?.VersionMajor ?? _pcapVersionMajor;

    /// <inheritdoc cref="VersionMajor"/>
    public ushort VersionMinor => _section?.VersionMinor ?? _pcapVersionMinor;

    /// <summary>pcapng: the section being read (its header options and interfaces); null for classic pcap.</summary>
    public CaptureSection? Section => _section;

    /// <summary>
    /// Interfaces of the current pcapng section, indexed by interface id (grows as IDBs are read), or the single
    /// implicit interface of a classic pcap file.
    /// </summary>
    public IReadOnlyList<CaptureInterface> Interfaces => _section?.Interfaces ?? _pcapInterfaces ?? NoInterfaces;

    /// <summary>Every pcapng Interface Statistics Block seen so far, in file order, over all sections.</summary>
    public IReadOnlyList<InterfaceStatistics> Statistics => _statistics;

    /// <summary>
    /// Reads the next record. Returns false at the clean end of the data and when damage stops reading
    /// (then <see cref="Error"/> says where and why). Does not allocate.
    /// </summary>
    /// <remarks><paramref name="frame"/>.Data is valid until the next call.</remarks>
    public bool TryRead(out CaptureFrame frame)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_finished)
        {
            frame = default;
            return false;
        }
        return Format == CaptureFileFormat.Pcap ? TryReadPcapRecord(out frame) : ReadPcapngBlocks(out frame, metadataOnly: false);
    }
}

namespace Survey6.Packets.Capture;

/// <summary>What kind of capture-file record a frame came from.</summary>
public enum FrameKind : byte
{
    /// <summary>A packet (pcap record, pcapng EPB, SPB or obsolete PB).</summary>
    Packet = 0,

    /// <summary>A pcapng Custom Block (0x00000BAD / 0x40000BAD); tshark numbers these as frames too.</summary>
    Custom = 1,
}

/// <summary>
/// One record read from a capture file. <see cref="Data"/> points into the reader's buffer and is valid
/// only until the next call to <see cref="CaptureReader.TryRead(out CaptureFrame)"/>.
/// </summary>
public ref struct CaptureFrame
{
    /// <summary>The captured bytes (length = captured length).</summary>
    public ReadOnlySpan<byte> Data;

    /// <summary>Nanoseconds since the Unix epoch (if_tsoffset and if_tsresol applied). Meaningless when <see cref="HasTimestamp"/> is false.</summary>
    public long TimestampNanoseconds;

    /// <summary>False for pcapng Simple Packet Blocks and Custom Blocks, which carry no timestamp.</summary>
    public bool HasTimestamp;

    /// <summary>Length of the packet on the wire (may exceed <c>Data.Length</c>).</summary>
    public uint OriginalLength;

    /// <summary>Link type of the interface the frame was captured on.</summary>
    public LinkType LinkType;

    /// <summary>Interface index within the current section (0 for classic pcap, -1 for Custom Blocks, which belong to no interface).</summary>
    public int InterfaceId;

    /// <summary>Zero-based pcapng section index (0 for classic pcap).</summary>
    public int SectionIndex;

    /// <summary>Byte offset in the file of the record's header.</summary>
    public long FileOffset;

    /// <summary>Record kind.</summary>
    public FrameKind Kind;

    /// <summary>Private Enterprise Number of a Custom Block (<see cref="FrameKind.Custom"/>); 0 for packets.</summary>
    public uint EnterpriseNumber;
}

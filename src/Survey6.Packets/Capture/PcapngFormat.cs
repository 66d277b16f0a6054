namespace Survey6.Packets.Capture;

/// <summary>
/// Wire constants of the pcapng format (draft-ietf-opsawg-pcapng). Shared by the writer and the reader,
/// so it holds numbers only and no behaviour.
/// </summary>
public static class PcapngFormat
{
    /// <summary>Written in host order after the SHB length; the reader uses it to detect byte order.</summary>
    public const uint ByteOrderMagic = 0x1A2B3C4D;

    /// <summary>Same magic as seen by a reader of the opposite byte order.</summary>
    public const uint ByteOrderMagicSwapped = 0x4D3C2B1A;

    public const ushort MajorVersion = 1;

    public const ushort MinorVersion = 0;

    /// <summary>SHB section length meaning "not specified"; a streaming writer cannot know it up front.</summary>
    public const long SectionLengthUnspecified = -1;

    /// <summary>Block type (4) + block total length (4).</summary>
    public const int BlockHeaderLength = 8;

    /// <summary>The repeated block total length at the end of every block.</summary>
    public const int BlockTrailerLength = 4;

    /// <summary>Smallest legal block: header and trailer with an empty body.</summary>
    public const int MinimumBlockLength = BlockHeaderLength + BlockTrailerLength;

    /// <summary>Option code (2) + option length (2).</summary>
    public const int OptionHeaderLength = 4;

    /// <summary>The largest option value the 16-bit length field can describe.</summary>
    public const int MaximumOptionValueLength = ushort.MaxValue;

    /// <summary>Blocks, options and packet data are padded to this many bytes.</summary>
    public const int Alignment = 4;

    /// <summary>if_tsresol value for nanoseconds (high bit clear: a power of ten).</summary>
    public const byte TimestampResolutionNanoseconds = 9;

    /// <summary>if_tsresol value for microseconds, the default when the option is absent.</summary>
    public const byte TimestampResolutionMicroseconds = 6;

    /// <summary>Rounds a length up to the 32-bit boundary that pcapng requires.</summary>
    public static int Pad(int length) => (length + (Alignment - 1)) & ~(Alignment - 1);

    /// <summary>Block type codes.</summary>
    public static class BlockType
    {
        public const uint SectionHeader = 0x0A0D0D0A;
        public const uint InterfaceDescription = 0x00000001;

        /// <summary>Obsolete Packet Block; readers still meet it in old files.</summary>
        public const uint Packet = 0x00000002;

        public const uint SimplePacket = 0x00000003;
        public const uint NameResolution = 0x00000004;
        public const uint InterfaceStatistics = 0x00000005;
        public const uint EnhancedPacket = 0x00000006;
        public const uint SystemdJournalExport = 0x00000009;
        public const uint DecryptionSecrets = 0x0000000A;

        /// <summary>Custom Block that may be copied to new files.</summary>
        public const uint CustomCopyable = 0x00000BAD;

        /// <summary>Custom Block that must not be copied to new files.</summary>
        public const uint CustomNoCopy = 0x40000BAD;
    }

    // Where each field starts, counted from the block's first byte, so that the reader and the writer share
    // one layout. Timestamps are two 32-bit words in the section's byte order, high word first.

    /// <summary>A timestamp's low 32-bit word follows its high word, in blocks and in the ISB time options.</summary>
    public const int TimestampLowWordOffset = 4;

    /// <summary>Fields of one option, counted from the option's first byte (section 3.5).</summary>
    public static class OptionOffset
    {
        public const int Code = 0;
        public const int Length = 2;
        public const int Value = OptionHeaderLength;
    }

    /// <summary>Fields every block starts with (section 3.1).</summary>
    public static class BlockOffset
    {
        public const int Type = 0;
        public const int TotalLength = 4;
        public const int Body = BlockHeaderLength;
    }

    /// <summary>Section Header Block fields (section 4.1).</summary>
    public static class ShbOffset
    {
        public const int ByteOrderMagic = 8;
        public const int MajorVersion = 12;
        public const int MinorVersion = 14;
        public const int SectionLength = 16;
        public const int Options = 24;
    }

    /// <summary>Interface Description Block fields (section 4.2).</summary>
    public static class IdbOffset
    {
        public const int LinkType = 8;
        public const int Reserved = 10;
        public const int SnapLength = 12;
        public const int Options = 16;
    }

    /// <summary>Enhanced Packet Block fields (section 4.3); the packet data is padded to <see cref="Alignment"/>, then options follow.</summary>
    public static class EpbOffset
    {
        public const int InterfaceId = 8;
        public const int TimestampHigh = 12;
        public const int TimestampLow = TimestampHigh + TimestampLowWordOffset;
        public const int CapturedLength = 20;
        public const int OriginalLength = 24;
        public const int Data = 28;
    }

    /// <summary>Obsolete Packet Block fields (appendix A): an EPB whose 32-bit interface id is a 16-bit one and a 16-bit drop count.</summary>
    public static class PbOffset
    {
        public const int InterfaceId = EpbOffset.InterfaceId;
        public const int DropCount = InterfaceId + sizeof(ushort);
        public const int TimestampHigh = EpbOffset.TimestampHigh;
        public const int TimestampLow = EpbOffset.TimestampLow;
        public const int CapturedLength = EpbOffset.CapturedLength;
        public const int OriginalLength = EpbOffset.OriginalLength;
        public const int Data = EpbOffset.Data;
    }

    /// <summary>Simple Packet Block fields (section 4.4).</summary>
    public static class SpbOffset
    {
        public const int OriginalLength = 8;
        public const int Data = 12;
    }

    /// <summary>Interface Statistics Block fields (section 4.6).</summary>
    public static class IsbOffset
    {
        public const int InterfaceId = 8;
        public const int TimestampHigh = 12;
        public const int TimestampLow = TimestampHigh + TimestampLowWordOffset;
        public const int Options = 20;
    }

    /// <summary>Custom Block fields (section 4.8).</summary>
    public static class CbOffset
    {
        public const int PrivateEnterpriseNumber = 8;
        public const int Data = 12;
    }

    /// <summary>Fixed body lengths (excluding the 8-byte header, options and the trailer).</summary>
    public static class FixedBodyLength
    {
        /// <summary>Byte-order magic (4), major (2), minor (2), section length (8).</summary>
        public const int SectionHeader = ShbOffset.Options - BlockOffset.Body;

        /// <summary>Link type (2), reserved (2), snap length (4).</summary>
        public const int InterfaceDescription = IdbOffset.Options - BlockOffset.Body;

        /// <summary>Interface id (4), timestamp high (4), timestamp low (4), captured length (4), original length (4).</summary>
        public const int EnhancedPacket = EpbOffset.Data - BlockOffset.Body;

        /// <summary>Interface id (4), timestamp high (4), timestamp low (4).</summary>
        public const int InterfaceStatistics = IsbOffset.Options - BlockOffset.Body;

        /// <summary>Original length (4).</summary>
        public const int SimplePacket = SpbOffset.Data - BlockOffset.Body;
    }

    /// <summary>Option codes valid in every block.</summary>
    public static class Option
    {
        public const ushort EndOfOptions = 0;
        public const ushort Comment = 1;

        /// <summary>Custom option: PEN (4) then a UTF-8 string; copyable.</summary>
        public const ushort CustomStringCopyable = 2988;

        /// <summary>Custom option: PEN (4) then binary data; copyable.</summary>
        public const ushort CustomBinaryCopyable = 2989;

        /// <summary>Custom option: PEN (4) then a UTF-8 string; not to be copied.</summary>
        public const ushort CustomStringNoCopy = 19372;

        /// <summary>Custom option: PEN (4) then binary data; not to be copied.</summary>
        public const ushort CustomBinaryNoCopy = 19373;
    }

    /// <summary>Section Header Block options.</summary>
    public static class ShbOption
    {
        public const ushort Hardware = 2;
        public const ushort Os = 3;
        public const ushort UserApplication = 4;
    }

    /// <summary>Interface Description Block options.</summary>
    public static class IdbOption
    {
        public const ushort Name = 2;
        public const ushort Description = 3;
        public const ushort Ipv4Address = 4;
        public const ushort Ipv6Address = 5;
        public const ushort MacAddress = 6;
        public const ushort EuiAddress = 7;
        public const ushort Speed = 8;
        public const ushort TimestampResolution = 9;
        public const ushort TimeZone = 10;
        public const ushort Filter = 11;
        public const ushort Os = 12;
        public const ushort FcsLength = 13;
        public const ushort TimestampOffset = 14;
        public const ushort Hardware = 15;
        public const ushort TxSpeed = 16;
        public const ushort RxSpeed = 17;
    }

    /// <summary>First byte of an if_filter value: how the rest is encoded.</summary>
    public static class FilterType
    {
        /// <summary>libpcap filter string (what tcpdump -f takes), UTF-8.</summary>
        public const byte LibpcapString = 0;

        /// <summary>Compiled BPF program.</summary>
        public const byte BpfProgram = 1;
    }

    /// <summary>Enhanced Packet Block options.</summary>
    public static class EpbOption
    {
        public const ushort Flags = 2;
        public const ushort Hash = 3;
        public const ushort DropCount = 4;
        public const ushort PacketId = 5;
        public const ushort Queue = 6;
        public const ushort Verdict = 7;
    }

    /// <summary>Bits of the 32-bit epb_flags word.</summary>
    public static class EpbFlags
    {
        public const uint DirectionUnknown = 0;
        public const uint DirectionInbound = 1;
        public const uint DirectionOutbound = 2;
        public const uint DirectionMask = 0x3;

        public const uint ReceptionUnspecified = 0 << 2;
        public const uint ReceptionUnicast = 1 << 2;
        public const uint ReceptionMulticast = 2 << 2;
        public const uint ReceptionBroadcast = 3 << 2;
        public const uint ReceptionPromiscuous = 4 << 2;
        public const uint ReceptionMask = 0x7 << 2;

        /// <summary>FCS length in bytes lives in bits 5-8; 0 means not available.</summary>
        public const int FcsLengthShift = 5;
        public const uint FcsLengthMask = 0xF << FcsLengthShift;

        /// <summary>Link-layer dependent error bits (CRC error, packet too long, ...) in bits 16-31.</summary>
        public const uint LinkLayerErrorMask = 0xFFFF0000;
    }

    /// <summary>Interface Statistics Block options.</summary>
    public static class IsbOption
    {
        /// <summary>Timestamp, stored like the EPB timestamp: high 32 bits then low 32 bits, in if_tsresol units.</summary>
        public const ushort StartTime = 2;

        /// <summary>Timestamp, stored like <see cref="StartTime"/>.</summary>
        public const ushort EndTime = 3;

        public const ushort InterfaceReceived = 4;
        public const ushort InterfaceDropped = 5;
        public const ushort FilterAccepted = 6;
        public const ushort OsDropped = 7;
        public const ushort UserDelivered = 8;
    }
}

namespace Survey6.Packets.Capture;

// Classic pcap (libpcap savefile) format.
public sealed partial class CaptureReader
{
    // Magic numbers as the first four bytes read big-endian.
    private const uint PcapMagicMicroseconds = 0xA1B2C3D4;
    private const uint PcapMagicMicrosecondsSwapped = 0xD4C3B2A1;
    private const uint PcapMagicNanoseconds = 0xA1B23C4D;
    private const uint PcapMagicNanosecondsSwapped = 0x4D3CB2A1;

    private const int PcapFileHeaderLength = 24;
    private const int PcapVersionMajorOffset = 4;
    private const int PcapVersionMinorOffset = 6;
    private const int PcapSnapLengthOffset = 16;
    private const int PcapLinkTypeOffset = 20;

    private const int PcapRecordHeaderLength = 16;
    private const int PcapSecondsOffset = 0;
    private const int PcapFractionOffset = 4;
    private const int PcapCapturedLengthOffset = 8;
    private const int PcapOriginalLengthOffset = 12;

    // Link-type field: low 16 bits are the LINKTYPE_ value; bit 26 says bits 28-31 hold the FCS length in 16-bit words.
    private const uint PcapLinkTypeMask = 0xFFFF;
    private const uint PcapFcsPresentFlag = 0x0400_0000;
    private const int PcapFcsLengthShift = 28;

    /// <summary>
    /// libpcap and Wireshark reject records above 262144 captured bytes for ordinary link types whatever the
    /// snaplen says. We accept up to max(262144, snaplen), capped at <see cref="MaxRecordLength"/>: a file
    /// written with a big snaplen keeps its big packets, a corrupt length still stops reading.
    /// </summary>
    private const uint PcapStandardMaxCapturedLength = 262_144;

    private LinkType _pcapLinkType;
    private uint _pcapSnapLength;
    private ushort _pcapVersionMajor;
    private ushort _pcapVersionMinor;
    private uint _pcapMaxCapturedLength;
    private int _pcapFractionToNanoseconds;
    private IReadOnlyList<CaptureInterface>? _pcapInterfaces;

    private void ReadPcapHeader(bool bigEndian, bool nanoseconds)
    {
        Format = CaptureFileFormat.Pcap;
        _bigEndian = bigEndian;
        IsNanosecond = nanoseconds;
        if (!Ensure(PcapFileHeaderLength))
        {
            Fail(0, $"file cut short in the pcap file header (needs {PcapFileHeaderLength} bytes, {Available} present)");
            return;
        }

        var header = Unread(PcapFileHeaderLength);
        _pcapVersionMajor = ReadUInt16(header[PcapVersionMajorOffset..]);
        _pcapVersionMinor = ReadUInt16(header[PcapVersionMinorOffset..]);
        _pcapSnapLength = ReadUInt32(header[PcapSnapLengthOffset..]);
        uint linkField = ReadUInt32(header[PcapLinkTypeOffset..]);
        _pcapLinkType = (LinkType)(linkField & PcapLinkTypeMask);
        if ((linkField & PcapFcsPresentFlag) != 0)
            FcsLength = (int)(linkField >> PcapFcsLengthShift) * 2;
        _pcapMaxCapturedLength = (uint)Math.Min(MaxRecordLength, Math.Max(PcapStandardMaxCapturedLength, _pcapSnapLength));
        _pcapFractionToNanoseconds = nanoseconds ? 1 : 1000;
        _pcapInterfaces =
        [
            new CaptureInterface(0, 0, _pcapLinkType, _pcapSnapLength, [], (byte)(nanoseconds ? 9 : 6),
                nanoseconds ? 1_000_000_000UL : 1_000_000UL, 0),
        ];

        // Version 1 files predate the current record layout; libpcap and Wireshark refuse them too.
        if (_pcapVersionMajor < 2)
        {
            Fail(0, $"unsupported pcap version {_pcapVersionMajor}.{_pcapVersionMinor}");
            return;
        }
        Consume(PcapFileHeaderLength);
    }

    private bool TryReadPcapRecord(out CaptureFrame frame)
    {
        frame = default;
        long offset = Position;
        if (!Ensure(PcapRecordHeaderLength))
        {
            if (Available == 0)
                return End();
            return Fail(offset, $"file cut short in the middle of a packet record header (needs {PcapRecordHeaderLength} bytes, {Available} present)");
        }

        uint capturedLength = ReadUInt32(Unread(PcapRecordHeaderLength)[PcapCapturedLengthOffset..]);
        if (capturedLength > _pcapMaxCapturedLength)
            return Fail(offset, $"packet record claims {capturedLength} captured bytes, more than the limit of {_pcapMaxCapturedLength}");

        int recordLength = PcapRecordHeaderLength + (int)capturedLength;
        if (!Ensure(recordLength))
            return Fail(offset, $"file cut short in the middle of a packet record (needs {recordLength} bytes, {Available} present)");

        // Ensure may have moved the data, so take the span only now.
        var record = Unread(recordLength);
        uint seconds = ReadUInt32(record[PcapSecondsOffset..]);
        uint fraction = ReadUInt32(record[PcapFractionOffset..]);
        frame.Data = record.Slice(PcapRecordHeaderLength, (int)capturedLength);
        frame.TimestampNanoseconds = (long)seconds * 1_000_000_000 + (long)fraction * _pcapFractionToNanoseconds;
        frame.HasTimestamp = true;
        frame.OriginalLength = ReadUInt32(record[PcapOriginalLengthOffset..]);
        frame.LinkType = _pcapLinkType;
        frame.FileOffset = offset;
        frame.Kind = FrameKind.Packet;
        Consume(recordLength);
        return true;
    }
}

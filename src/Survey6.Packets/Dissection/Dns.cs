using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Dissection;

/// <summary>What went wrong, or was unusual, while reading a DNS message. Several flags may be set.</summary>
[Flags]
public enum DnsStatus : ushort
{
    /// <summary>Everything the header declared was read.</summary>
    Ok = 0,

    /// <summary>The message ended before the header, a question or a record it declared (tshark: malformed).</summary>
    Truncated = 1 << 0,

    /// <summary>A name tshark rejects as malformed (label type 0x80, pointer beyond the message, ...); reading stopped there.</summary>
    BadName = 1 << 1,

    /// <summary>A name's compression pointers loop; tshark shows "&lt;Name contains a pointer that loops&gt;".</summary>
    PointerLoop = 1 << 2,

    /// <summary>A name expands to 254 or more characters; tshark shows "&lt;Name too long&gt;".</summary>
    NameTooLong = 1 << 3,

    /// <summary>A name holds an RFC 2673 extended label (bit-string or unknown type).</summary>
    ExtendedLabel = 1 << 4,

    /// <summary>More than <see cref="DnsReader.MaxRecords"/> questions and records were declared; the rest were not walked.</summary>
    TooManyRecords = 1 << 5,

    /// <summary>An AAAA record's RDATA was not 16 bytes (and not empty); it is not counted.</summary>
    BadAaaaLength = 1 << 6,

    /// <summary>Bytes follow the last declared record.</summary>
    TrailingData = 1 << 7,

    /// <summary>Names needed more than <see cref="DnsReader.MaxNameSteps"/> label/pointer steps in total; reading stopped.</summary>
    WalkLimit = 1 << 8,
}

/// <summary>Which DNS-format protocol a UDP port pair carries, as tshark decides it.</summary>
public enum DnsTransportKind : byte
{
    None = 0,
    Dns = 1,
    Mdns = 2,
    Llmnr = 3,
}

[InlineArray(DnsInfo.QueryNameCapacity)]
internal struct DnsNameBuffer
{
    private byte _element0;
}

[InlineArray(DnsInfo.AaaaCapacity)]
internal struct DnsAaaaBuffer
{
    private Ipv6Address _element0;
}

/// <summary>
/// What <see cref="DnsReader.Read"/> extracts from one DNS message. Mutable and reused: all storage is inline,
/// so a record holding it can be refilled for every packet without allocating.
/// </summary>
public struct DnsInfo
{
    /// <summary>Bytes kept for the query name; tshark's escaping expands at most 254 name bytes to 4 bytes each.</summary>
    public const int QueryNameCapacity = 1024;

    /// <summary>AAAA addresses kept; <see cref="AaaaCount"/> keeps counting past this.</summary>
    public const int AaaaCapacity = 16;

    private DnsNameBuffer _queryName;
    private DnsAaaaBuffer _aaaa;
    private int _queryNameLength;

    /// <summary>How many header bytes were present (0–12); a header field is valid when its bytes were.</summary>
    public int HeaderBytes { readonly get; internal set; }

    public ushort Id { readonly get; internal set; }

    public ushort Flags { readonly get; internal set; }

    public ushort QuestionCount { readonly get; internal set; }

    public ushort AnswerCount { readonly get; internal set; }

    public ushort AuthorityCount { readonly get; internal set; }

    public ushort AdditionalCount { readonly get; internal set; }

    /// <summary>True when the first question (name, type and class) was read; the Query* members are valid then.</summary>
    public bool HasQuestion { readonly get; internal set; }

    /// <summary>True when every declared question was read.</summary>
    public bool QuestionComplete { readonly get; internal set; }

    /// <summary>QTYPE of the first question.</summary>
    public ushort QueryType { readonly get; internal set; }

    /// <summary>QCLASS of the first question as on the wire (mDNS keeps its unicast-response bit 15 here).</summary>
    public ushort QueryClass { readonly get; internal set; }

    /// <summary>AAAA records with 16-byte RDATA in the answer, authority and additional sections.</summary>
    public int AaaaCount { readonly get; internal set; }

    public DnsStatus Status { readonly get; internal set; }

    public readonly bool HeaderComplete => HeaderBytes >= DnsReader.HeaderLength;

    public readonly bool IsResponse => (Flags & 0x8000) != 0;

    public readonly byte Opcode => (byte)((Flags >> 11) & 0xF);

    /// <summary>The 4-bit header RCODE only, as tshark's dns.flags.rcode (EDNS extended bits are not merged).</summary>
    public readonly byte Rcode => (byte)(Flags & 0xF);

    /// <summary>How many AAAA addresses <see cref="GetAaaa"/> can return.</summary>
    public readonly int StoredAaaaCount => Math.Min(AaaaCount, AaaaCapacity);

    /// <summary>The first question's name exactly as tshark 4.0.17 prints dns.qry.name, UTF-8 encoded.</summary>
    /// <remarks>Refers into this struct, so it is only available on a variable, and only while that variable is unchanged.</remarks>
    [UnscopedRef]
    public readonly ReadOnlySpan<byte> QueryNameUtf8 => ((ReadOnlySpan<byte>)_queryName)[.._queryNameLength];

    /// <summary>Writable name storage for the reader.</summary>
    [UnscopedRef]
    internal Span<byte> QueryNameBuffer => _queryName;

    internal int QueryNameLength
    {
        readonly get => _queryNameLength;
        set => _queryNameLength = value;
    }

    /// <summary>The i-th AAAA address in message order (answer, then authority, then additional).</summary>
    public readonly Ipv6Address GetAaaa(int i)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(i);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, StoredAaaaCount);
        return _aaaa[i];
    }

    /// <summary>Copies the query name as UTF-16 and returns its length; <paramref name="dest"/> needs at most <c>QueryNameUtf8.Length</c> chars.</summary>
    public readonly int CopyQueryName(Span<char> dest) => Encoding.UTF8.GetChars(((ReadOnlySpan<byte>)_queryName)[.._queryNameLength], dest);

    public readonly string QueryNameToString() => Encoding.UTF8.GetString(((ReadOnlySpan<byte>)_queryName)[.._queryNameLength]);

    /// <summary>Clears every field; the inline buffers are left as they are since their lengths are zeroed.</summary>
    public void Reset()
    {
        HeaderBytes = 0;
        Id = 0;
        Flags = 0;
        QuestionCount = 0;
        AnswerCount = 0;
        AuthorityCount = 0;
        AdditionalCount = 0;
        HasQuestion = false;
        QuestionComplete = false;
        QueryType = 0;
        QueryClass = 0;
        AaaaCount = 0;
        Status = DnsStatus.Ok;
        _queryNameLength = 0;
    }

    internal void AddAaaa(Ipv6Address address)
    {
        if (AaaaCount < AaaaCapacity)
        {
            _aaaa[AaaaCount] = address;
        }

        AaaaCount++;
    }
}

/// <summary>Reads DNS messages (also mDNS and LLMNR) into <see cref="DnsInfo"/> without allocating.</summary>
/// <remarks>
/// Names are expanded the way tshark 4.0.17 does it (packet-dns.c expand_dns_name/get_dns_name, then
/// format_text), so the query name matches dns.qry.name byte for byte:
/// <list type="bullet">
/// <item>Labels are copied raw and joined with '.'; a '.' or '\' inside a label is not escaped.</item>
/// <item>The expanded raw text is capped at 254 bytes; a longer name becomes "&lt;Name too long&gt;"
/// (for plain labels that is a wire length over 255).</item>
/// <item>The empty name is "&lt;Root&gt;"; so is any name whose first raw byte is NUL when it is a bare
/// pointer or the root byte (tshark checks only the first byte).</item>
/// <item>Compression pointers may point anywhere inside the message, forwards too. After 255 pointers,
/// or at a pointer whose target is 4 bytes past the pointer itself (tshark's intended self-pointer test,
/// off by the pointer's length), the name is "&lt;Name contains a pointer that loops&gt;".</item>
/// <item>After a loop the name is taken to end just past its first pointer, so type and class are read
/// from there (tshark's behaviour, even when that misaligns the rest).</item>
/// <item>Label type 0x80, a pointer outside the message, a first byte of type 0x40 other than 0x41, and
/// a name of only bit-string labels are malformed (no name); reached through a bare pointer, the latter
/// is an empty name instead.</item>
/// <item>Any other 0x40 type later in a name gives "&lt;Unknown extended label&gt;", and the name is taken
/// to end right after that byte. A 0x41 bit-string label writes "\[x&lt;hex&gt;/&lt;bits&gt;]" into the
/// buffer without counting it, so only a prefix of the text, as long as the ordinary labels and dots,
/// is shown.</item>
/// <item>The raw text is then escaped by format_text: printable ASCII as is; other ASCII as \a \b \f \n
/// \r \t \v or a 3-digit octal escape (\000, \177); a UTF-8 sequence is decoded leniently (overlong
/// forms and 5/6-byte forms accepted, a lone or truncated sequence, 0xFE or 0xFF gives U+FFFD, a
/// surrogate or a value over U+10FFFF gives U+FFFD); the code point is written as UTF-8 when glib calls it
/// printable (not Cc, Cf, Cn or Cs in Unicode 15.0), else as \uXXXX or \UXXXXXXXX (upper-case hex).</item>
/// </list>
/// The walk is bounded: at most <see cref="MaxRecords"/> questions and records, 255 pointers per name
/// (cycles are caught early by Brent's method, with the same result tshark reaches later) and
/// <see cref="MaxNameSteps"/> label/pointer steps per message.
/// </remarks>
public static class DnsReader
{
    public const int HeaderLength = 12;

    /// <summary>Questions plus records walked per message.</summary>
    public const int MaxRecords = 256;

    /// <summary>Label and pointer steps taken over all names of one message; room for 256 names of 127 labels and 127 pointers.</summary>
    public const int MaxNameSteps = 65536;

    private const int IdOffset = 0;
    private const int FlagsOffset = 2;
    private const int QuestionCountOffset = 4;
    private const int AnswerCountOffset = 6;
    private const int AuthorityCountOffset = 8;
    private const int AdditionalCountOffset = 10;

    private const int QuestionFixedLength = 4;
    private const int RecordTypeOffset = 0;
    private const int RecordDataLengthOffset = 8;
    private const int RecordFixedLength = 10;

    private const ushort TypeAaaa = 28;

    private const ushort PortDns = 53;
    private const ushort PortMdns = 5353;
    private const ushort PortLlmnr = 5355;

    /// <summary>Reads <paramref name="message"/> (a UDP payload, or a TCP payload after its 2-byte length) into <paramref name="info"/>.</summary>
    [SkipLocalsInit]
    public static void Read(ReadOnlySpan<byte> message, ref DnsInfo info)
    {
        info.Reset();
        Span<byte> raw = stackalloc byte[DnsNameExpander.RawCapacity];
        var reader = new DnsMessageReader(message, raw);
        reader.Read(ref info);
    }

    /// <summary>
    /// Classifies a UDP port pair. tshark tries the lower port first, so when both are DNS-family ports the
    /// lower wins: 53 (DNS) over 5353 (mDNS) over 5355 (LLMNR). Other protocols registered on the lower
    /// port would win in tshark too; they are outside this classifier. tshark's "dns_udp" heuristic also
    /// claims DNS-shaped payloads on any other ports, which ports alone cannot tell.
    /// </summary>
    public static DnsTransportKind Classify(ushort srcPort, ushort dstPort)
    {
        var low = Math.Min(srcPort, dstPort);
        var high = Math.Max(srcPort, dstPort);
        var kind = KindOf(low);
        return kind != DnsTransportKind.None ? kind : KindOf(high);
    }

    private static DnsTransportKind KindOf(ushort port) => port switch
    {
        PortDns => DnsTransportKind.Dns,
        PortMdns => DnsTransportKind.Mdns,
        PortLlmnr => DnsTransportKind.Llmnr,
        _ => DnsTransportKind.None,
    };

    private ref struct DnsMessageReader
    {
        private readonly ReadOnlySpan<byte> _message;
        private DnsNameExpander _names;
        private int _offset;

        public DnsMessageReader(ReadOnlySpan<byte> message, Span<byte> raw)
        {
            _message = message;
            _names = new DnsNameExpander(message, raw);
            _offset = 0;
        }

        public void Read(ref DnsInfo info)
        {
            if (!ReadHeader(ref info))
            {
                return;
            }

            int walked = 0;
            for (int i = 0; i < info.QuestionCount; i++)
            {
                if (walked++ == MaxRecords)
                {
                    info.Status |= DnsStatus.TooManyRecords;
                    return;
                }

                if (!ReadQuestion(ref info, first: i == 0))
                {
                    return;
                }
            }

            info.QuestionComplete = true;
            int records = info.AnswerCount + info.AuthorityCount + info.AdditionalCount;
            for (int i = 0; i < records; i++)
            {
                if (walked++ == MaxRecords)
                {
                    info.Status |= DnsStatus.TooManyRecords;
                    return;
                }

                if (!ReadRecord(ref info))
                {
                    return;
                }
            }

            if (_offset < _message.Length)
            {
                info.Status |= DnsStatus.TrailingData;
            }
        }

        private bool ReadHeader(ref DnsInfo info)
        {
            var m = _message;
            info.HeaderBytes = Math.Min(m.Length, HeaderLength);

            // Each field is filled when its own bytes are present, so a cut header still yields its leading fields.
            if (m.Length >= FlagsOffset)
            {
                info.Id = BinaryPrimitives.ReadUInt16BigEndian(m[IdOffset..]);
            }

            if (m.Length >= QuestionCountOffset)
            {
                info.Flags = BinaryPrimitives.ReadUInt16BigEndian(m[FlagsOffset..]);
            }

            if (m.Length >= AnswerCountOffset)
            {
                info.QuestionCount = BinaryPrimitives.ReadUInt16BigEndian(m[QuestionCountOffset..]);
            }

            if (m.Length >= AuthorityCountOffset)
            {
                info.AnswerCount = BinaryPrimitives.ReadUInt16BigEndian(m[AnswerCountOffset..]);
            }

            if (m.Length >= AdditionalCountOffset)
            {
                info.AuthorityCount = BinaryPrimitives.ReadUInt16BigEndian(m[AuthorityCountOffset..]);
            }

            if (m.Length < HeaderLength)
            {
                info.Status |= DnsStatus.Truncated;
                return false;
            }

            info.AdditionalCount = BinaryPrimitives.ReadUInt16BigEndian(m[AdditionalCountOffset..]);
            _offset = HeaderLength;
            return true;
        }

        private bool ReadQuestion(ref DnsInfo info, bool first)
        {
            if (!ReadName(ref info, keepText: first, out var outcome, out int consumed))
            {
                return false;
            }

            int fixedStart = _offset + consumed;
            if (!Has(fixedStart, QuestionFixedLength))
            {
                info.Status |= DnsStatus.Truncated;
                return false;
            }

            if (first)
            {
                // Like tshark, the name counts only once type and class are present too.
                info.QueryType = BinaryPrimitives.ReadUInt16BigEndian(_message[fixedStart..]);
                info.QueryClass = BinaryPrimitives.ReadUInt16BigEndian(_message[(fixedStart + 2)..]);
                info.QueryNameLength = _names.Present(outcome, info.QueryNameBuffer);
                info.HasQuestion = true;
            }

            _offset = fixedStart + QuestionFixedLength;
            return true;
        }

        private bool ReadRecord(ref DnsInfo info)
        {
            if (!ReadName(ref info, keepText: false, out _, out int consumed))
            {
                return false;
            }

            int fixedStart = _offset + consumed;
            if (!Has(fixedStart, RecordFixedLength))
            {
                info.Status |= DnsStatus.Truncated;
                return false;
            }

            var fixedPart = _message.Slice(fixedStart, RecordFixedLength);
            ushort type = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[RecordTypeOffset..]);
            int dataLength = BinaryPrimitives.ReadUInt16BigEndian(fixedPart[RecordDataLengthOffset..]);
            int dataStart = fixedStart + RecordFixedLength;
            if (!Has(dataStart, dataLength))
            {
                info.Status |= DnsStatus.Truncated;
                return false;
            }

            if (type == TypeAaaa)
            {
                // Any class counts (mDNS sets the cache-flush bit, tshark decodes CH too); only 16-byte RDATA is an address.
                if (dataLength == Ipv6Address.Length)
                {
                    info.AddAaaa(Ipv6Address.Read(_message.Slice(dataStart, Ipv6Address.Length)));
                }
                else if (dataLength != 0)
                {
                    info.Status |= DnsStatus.BadAaaaLength;
                }
            }

            _offset = dataStart + dataLength;
            return true;
        }

        private bool ReadName(ref DnsInfo info, bool keepText, out DnsNameOutcome outcome, out int consumed)
        {
            outcome = _names.Expand(_offset, keepText, out consumed);
            switch (outcome)
            {
                case DnsNameOutcome.Name:
                case DnsNameOutcome.Root:
                    break;
                case DnsNameOutcome.Loop:
                    info.Status |= DnsStatus.PointerLoop;
                    break;
                case DnsNameOutcome.TooLong:
                    info.Status |= DnsStatus.NameTooLong;
                    break;
                case DnsNameOutcome.UnknownExtended:
                    break;
                case DnsNameOutcome.Truncated:
                    info.Status |= DnsStatus.Truncated;
                    break;
                case DnsNameOutcome.WalkLimit:
                    info.Status |= DnsStatus.WalkLimit;
                    break;
                default:
                    info.Status |= DnsStatus.BadName;
                    break;
            }

            if (_names.SawExtendedLabel)
            {
                info.Status |= DnsStatus.ExtendedLabel;
            }

            return outcome <= DnsNameOutcome.UnknownExtended;
        }

        private readonly bool Has(int start, int length) => start <= _message.Length && length <= _message.Length - start;
    }
}

/// <summary>How expanding one name ended. Values up to <see cref="UnknownExtended"/> let the walk go on.</summary>
internal enum DnsNameOutcome : byte
{
    Name,
    Root,
    Loop,
    TooLong,
    UnknownExtended,
    Truncated,
    Malformed,
    WalkLimit,
}

/// <summary>Replays tshark's name expansion over a message, keeping the raw (unescaped) text of the last name.</summary>
internal ref struct DnsNameExpander
{
    /// <summary>tshark's MAX_DNAME_LEN: raw text buffer, one byte of which is kept for the terminator.</summary>
    internal const int RawCapacity = 255;

    /// <summary>tshark's MIN_DNAME_LEN: the shortest wire form it accepts for a name other than the root.</summary>
    private const int MinNameLength = 2;

    private const int MaxPointers = 255;

    /// <summary>tshark compares a pointer's target with "offset + 2" where offset is already past the 2-byte pointer.</summary>
    private const int LoopTargetDistance = 4;

    private const int LabelTypeMask = 0xC0;
    private const int LabelTypeNormal = 0x00;
    private const int LabelTypeExtended = 0x40;
    private const int LabelTypePointer = 0xC0;
    private const int ExtendedBitString = 0x41;

    private readonly ReadOnlySpan<byte> _message;
    private readonly Span<byte> _raw;
    private int _rawLength;
    private int _stepsLeft;

    public DnsNameExpander(ReadOnlySpan<byte> message, Span<byte> raw)
    {
        _message = message;
        _raw = raw;
        _rawLength = 0;
        _stepsLeft = DnsReader.MaxNameSteps;
        SawExtendedLabel = false;
    }

    /// <summary>Whether the last expanded name contained an extended label.</summary>
    public bool SawExtendedLabel { get; private set; }

    /// <summary>
    /// Expands the name at <paramref name="start"/>. <paramref name="consumed"/> is what tshark advances by:
    /// up to the first pointer, or to the terminator, or just past an unknown extended label byte.
    /// Without <paramref name="keepText"/> only the first label's bytes are copied, as the root test needs them.
    /// </summary>
    public DnsNameOutcome Expand(int start, bool keepText, out int consumed)
    {
        var m = _message;
        var raw = _raw;
        SawExtendedLabel = false;
        _rawLength = 0;
        consumed = 0;

        int offset = start;
        int firstPointerEnd = -1;
        int pointers = 0;
        int np = 0;
        int maxName = RawCapacity;
        int nameLength = 0;
        bool jumped = false;

        // Brent's cycle detection over pointer positions: a revisited pointer means tshark would circle until its
        // 255-pointer limit and report a loop, so the answer is known without circling.
        int brentMark = -1;
        int brentPower = 1;
        int brentSteps = 0;

        // Room for "/255]" or two hex digits of a bit-string label.
        Span<byte> scratch = stackalloc byte[5];

        while (true)
        {
            if (--_stepsLeft < 0)
            {
                return DnsNameOutcome.WalkLimit;
            }

            if ((uint)offset >= (uint)m.Length)
            {
                return jumped ? DnsNameOutcome.Malformed : DnsNameOutcome.Truncated;
            }

            int component = m[offset++];
            jumped = false;
            if (component == 0)
            {
                break;
            }

            switch (component & LabelTypeMask)
            {
                case LabelTypeNormal:
                    if (np != 0)
                    {
                        if (maxName > 0)
                        {
                            raw[np++] = (byte)'.';
                            nameLength++;
                            maxName--;
                        }
                    }
                    else
                    {
                        // tshark reserves the terminator's byte when the first label starts.
                        maxName--;
                    }

                    if (component > m.Length - offset)
                    {
                        return DnsNameOutcome.Truncated;
                    }

                    int copy = Math.Min(component, Math.Max(maxName, 0));
                    if (keepText || np == 0)
                    {
                        m.Slice(offset, copy).CopyTo(raw[np..]);
                    }

                    np += copy;
                    nameLength += copy;
                    maxName -= copy;
                    offset += component;
                    break;

                case LabelTypeExtended:
                    SawExtendedLabel = true;
                    if (component != ExtendedBitString)
                    {
                        // tshark measures the name up to here, even after a pointer jump.
                        consumed = offset - start;
                        return consumed < MinNameLength ? DnsNameOutcome.Malformed : DnsNameOutcome.UnknownExtended;
                    }

                    if (offset >= m.Length)
                    {
                        return DnsNameOutcome.Truncated;
                    }

                    int bitCount = m[offset++];
                    int labelLength = ((bitCount - 1) / 8) + 1;
                    Append(raw, ref np, ref maxName, "\\[x"u8);
                    for (int k = 0; k < labelLength; k++)
                    {
                        // tshark only reads the byte while it still has room to print it; a later read catches a short message.
                        if (maxName > 0)
                        {
                            if (offset >= m.Length)
                            {
                                return DnsNameOutcome.Truncated;
                            }

                            byte b = m[offset];
                            scratch[0] = LowerHex(b >> 4);
                            scratch[1] = LowerHex(b & 0xF);
                            Append(raw, ref np, ref maxName, scratch[..2]);
                        }

                        offset++;
                    }

                    int n = 0;
                    scratch[n++] = (byte)'/';
                    if (bitCount >= 100)
                    {
                        scratch[n++] = (byte)('0' + (bitCount / 100));
                    }

                    if (bitCount >= 10)
                    {
                        scratch[n++] = (byte)('0' + (bitCount / 10 % 10));
                    }

                    scratch[n++] = (byte)('0' + (bitCount % 10));
                    scratch[n++] = (byte)']';
                    Append(raw, ref np, ref maxName, scratch[..n]);
                    break;

                case LabelTypePointer:
                    if (offset >= m.Length)
                    {
                        return DnsNameOutcome.Truncated;
                    }

                    int pointerAt = offset - 1;
                    int target = ((component & ~LabelTypeMask) << 8) | m[offset];
                    offset++;
                    pointers++;
                    if (firstPointerEnd < 0)
                    {
                        firstPointerEnd = offset;
                    }

                    if (target == pointerAt + LoopTargetDistance || pointers > MaxPointers || pointerAt == brentMark)
                    {
                        consumed = firstPointerEnd - start;
                        return DnsNameOutcome.Loop;
                    }

                    if (++brentSteps == brentPower)
                    {
                        brentMark = pointerAt;
                        brentPower <<= 1;
                        brentSteps = 0;
                    }

                    offset = target;
                    jumped = true;
                    break;

                default:
                    return DnsNameOutcome.Malformed;
            }
        }

        consumed = (firstPointerEnd >= 0 ? firstPointerEnd : offset) - start;
        if (maxName <= 0)
        {
            return DnsNameOutcome.TooLong;
        }

        // tshark tests only the first byte of the text (the terminator when empty) for the root name.
        if ((np == 0 || raw[0] == 0) && consumed <= MinNameLength)
        {
            return DnsNameOutcome.Root;
        }

        if (consumed < MinNameLength || (consumed > MinNameLength && nameLength == 0))
        {
            return DnsNameOutcome.Malformed;
        }

        _rawLength = nameLength;
        return DnsNameOutcome.Name;
    }

    /// <summary>Writes the presentation form of the last expanded name and returns its length.</summary>
    public readonly int Present(DnsNameOutcome outcome, Span<byte> destination)
    {
        ReadOnlySpan<byte> fixedText = outcome switch
        {
            DnsNameOutcome.Root => "<Root>"u8,
            DnsNameOutcome.Loop => "<Name contains a pointer that loops>"u8,
            DnsNameOutcome.TooLong => "<Name too long>"u8,
            DnsNameOutcome.UnknownExtended => "<Unknown extended label>"u8,
            _ => default,
        };
        if (outcome != DnsNameOutcome.Name)
        {
            fixedText.CopyTo(destination);
            return fixedText.Length;
        }

        return TsharkText.Format(_raw[.._rawLength], destination);
    }

    /// <summary>snprintf into the remaining room: all of it, or nothing and no more room (then the name is too long).</summary>
    private static void Append(Span<byte> raw, ref int np, ref int maxName, ReadOnlySpan<byte> text)
    {
        if (maxName <= 0)
        {
            return;
        }

        if (text.Length <= maxName)
        {
            text.CopyTo(raw[np..]);
            np += text.Length;
            maxName -= text.Length;
        }
        else
        {
            maxName = 0;
        }
    }

    private static byte LowerHex(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
}

/// <summary>Wireshark's format_text: makes packet bytes printable UTF-8 the way tshark shows strings.</summary>
internal static class TsharkText
{
    /// <summary>Worst case is 4 output bytes per input byte (an octal escape).</summary>
    internal const int MaxExpansion = 4;

    private const uint Replacement = 0xFFFD;

    /// <summary>Formats <paramref name="text"/> into <paramref name="destination"/> (room for <see cref="MaxExpansion"/> bytes per input byte).</summary>
    internal static int Format(ReadOnlySpan<byte> text, Span<byte> destination)
    {
        int i = 0;
        int o = 0;
        while (i < text.Length)
        {
            byte c = text[i++];
            if (c is >= 0x20 and <= 0x7E)
            {
                destination[o++] = c;
                continue;
            }

            if (c < 0x80)
            {
                o += WriteAsciiEscape(c, destination[o..]);
                continue;
            }

            int more;
            uint codePoint;
            if ((c & 0xE0) == 0xC0)
            {
                more = 1;
                codePoint = c & 0x1Fu;
            }
            else if ((c & 0xF0) == 0xE0)
            {
                more = 2;
                codePoint = c & 0x0Fu;
            }
            else if ((c & 0xF8) == 0xF0)
            {
                more = 3;
                codePoint = c & 0x07u;
            }
            else if ((c & 0xFC) == 0xF8)
            {
                more = 4;
                codePoint = c & 0x03u;
            }
            else if ((c & 0xFE) == 0xFC)
            {
                more = 5;
                codePoint = c & 0x01u;
            }
            else
            {
                // A continuation byte, 0xFE or 0xFF cannot start a character.
                more = 0;
                codePoint = Replacement;
            }

            for (int k = 0; k < more; k++)
            {
                // A missing or non-continuation byte ends the character; that byte is read again as a new one.
                if (i >= text.Length || (text[i] & 0xC0) != 0x80)
                {
                    codePoint = Replacement;
                    break;
                }

                codePoint = (codePoint << 6) | (text[i++] & 0x3Fu);
            }

            if (codePoint >= 0x110000 || (codePoint & 0xFFFFF800) == 0xD800)
            {
                codePoint = Replacement;
            }

            bool printable = codePoint < 0x80 ? codePoint is >= 0x20 and <= 0x7E : GlibNonPrintable.IsPrintable(codePoint);
            o += printable ? WriteUtf8(codePoint, destination[o..]) : WriteUniversalName(codePoint, destination[o..]);
        }

        return o;
    }

    private static int WriteAsciiEscape(byte c, Span<byte> destination)
    {
        destination[0] = (byte)'\\';
        byte letter = c switch
        {
            0x07 => (byte)'a',
            0x08 => (byte)'b',
            0x0C => (byte)'f',
            0x0A => (byte)'n',
            0x0D => (byte)'r',
            0x09 => (byte)'t',
            0x0B => (byte)'v',
            _ => 0,
        };
        if (letter != 0)
        {
            destination[1] = letter;
            return 2;
        }

        destination[1] = (byte)('0' + ((c >> 6) & 3));
        destination[2] = (byte)('0' + ((c >> 3) & 7));
        destination[3] = (byte)('0' + (c & 7));
        return 4;
    }

    private static int WriteUtf8(uint codePoint, Span<byte> destination)
    {
        if (codePoint < 0x80)
        {
            destination[0] = (byte)codePoint;
            return 1;
        }

        if (codePoint < 0x800)
        {
            destination[0] = (byte)(0xC0 | (codePoint >> 6));
            destination[1] = (byte)(0x80 | (codePoint & 0x3F));
            return 2;
        }

        if (codePoint < 0x10000)
        {
            destination[0] = (byte)(0xE0 | (codePoint >> 12));
            destination[1] = (byte)(0x80 | ((codePoint >> 6) & 0x3F));
            destination[2] = (byte)(0x80 | (codePoint & 0x3F));
            return 3;
        }

        destination[0] = (byte)(0xF0 | (codePoint >> 18));
        destination[1] = (byte)(0x80 | ((codePoint >> 12) & 0x3F));
        destination[2] = (byte)(0x80 | ((codePoint >> 6) & 0x3F));
        destination[3] = (byte)(0x80 | (codePoint & 0x3F));
        return 4;
    }

    private static int WriteUniversalName(uint codePoint, Span<byte> destination)
    {
        int digits = codePoint <= 0xFFFF ? 4 : 8;
        destination[0] = (byte)'\\';
        destination[1] = (byte)(digits == 4 ? 'u' : 'U');
        for (int k = 0; k < digits; k++)
        {
            uint nibble = (codePoint >> (4 * (digits - 1 - k))) & 0xF;
            destination[2 + k] = (byte)(nibble < 10 ? '0' + nibble : 'A' + nibble - 10);
        }

        return 2 + digits;
    }
}

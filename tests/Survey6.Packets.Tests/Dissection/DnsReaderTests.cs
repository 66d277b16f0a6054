using System.Text;
using CsCheck;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Packets.Tests.Dissection;

public class DnsReaderTests
{
    private const int TypeA = 1;
    private const int TypeNs = 2;
    private const int TypeCname = 5;
    private const int TypeAaaa = 28;
    private const int TypeOpt = 41;
    private const int ClassIn = 1;

    private static readonly Ipv6Address A1 = Ipv6Address.Parse("2001:db8::1");
    private static readonly Ipv6Address A2 = Ipv6Address.Parse("2001:db8::2");
    private static readonly Ipv6Address A3 = Ipv6Address.Parse("fe80::1234:5678");
    private static readonly Ipv6Address A4 = Ipv6Address.Parse("2001:db8:ffff::4");

    private static byte[] Bytes(Ipv6Address a)
    {
        var b = new byte[16];
        a.Write(b);
        return b;
    }

    private static DnsInfo Parse(ReadOnlySpan<byte> message)
    {
        var info = default(DnsInfo);
        DnsReader.Read(message, ref info);
        return info;
    }

    private static List<Ipv6Address> Aaaas(in DnsInfo info)
    {
        var list = new List<Ipv6Address>();
        for (int i = 0; i < info.StoredAaaaCount; i++)
        {
            list.Add(info.GetAaaa(i));
        }

        return list;
    }

    private static byte[] Query() =>
        new DnsMessageBuilder().Header(0xBEEF, 0x0100, 1).Name("www", "example", "com").TypeClass(TypeAaaa, ClassIn).ToArray();

    /// <summary>Answers (CNAME, three AAAA, an A), an NS in authority, an AAAA and an OPT in additional; names compressed.</summary>
    private static byte[] Response()
    {
        var b = new DnsMessageBuilder().Header(0x1234, 0x8180, 1, 5, 1, 2);
        b.Name("www", "example", "com").TypeClass(TypeAaaa, ClassIn);
        b.Pointer(12).Record(TypeCname, ClassIn, new DnsMessageBuilder().Labels("cdn"u8.ToArray()).Pointer(16).ToArray());
        int cdn = 12 + 17 + 4 + 12;
        b.Pointer(cdn).Record(TypeAaaa, ClassIn, Bytes(A1));
        b.Pointer(cdn).Record(TypeAaaa, ClassIn, Bytes(A2));
        b.Pointer(cdn).Record(TypeA, ClassIn, [192, 0, 2, 1]);
        b.Pointer(cdn).Record(TypeAaaa, ClassIn, Bytes(A3));
        b.Pointer(16).Record(TypeNs, ClassIn, new DnsMessageBuilder().Labels("ns1"u8.ToArray()).Pointer(16).ToArray());
        b.Labels("ns1"u8.ToArray()).Pointer(16).Record(TypeAaaa, ClassIn, Bytes(A4));
        b.Bytes(0).Record(TypeOpt, 1232, []);
        return b.ToArray();
    }

    private static byte[] NxDomain() =>
        new DnsMessageBuilder().Header(7, 0x8183, 1, 0, 0, 1).Name("nope", "example").TypeClass(TypeAaaa, ClassIn)
            .Bytes(0).U16(TypeOpt).U16(1232).Bytes(1, 0).U16(0).U16(0) // extended RCODE bits 1 in the OPT TTL
            .ToArray();

    private static byte[] RootQuery() => new DnsMessageBuilder().Header(9, 0x0000, 1).Bytes(0).TypeClass(TypeNs, ClassIn).ToArray();

    private static byte[] SelfLoop() => new DnsMessageBuilder().Header(1, 0x0100, 1).Pointer(12).TypeClass(TypeAaaa, ClassIn).ToArray();

    private static byte[] TwoPointerLoop() =>
        new DnsMessageBuilder().Header(2, 0x0100, 1).Labels("a"u8.ToArray()).Pointer(16).Pointer(12).TypeClass(TypeAaaa, ClassIn).ToArray();

    /// <summary>A loop through a long run of labels: tshark would circle 255 times; the reader must see it cheaply.</summary>
    private static byte[] LongLoop()
    {
        var b = new DnsMessageBuilder().Header(3, 0x0100, 1).Pointer(18).TypeClass(TypeAaaa, ClassIn);
        for (int i = 0; i < 400; i++)
        {
            b.Labels("x"u8.ToArray());
        }

        return b.Pointer(18).ToArray();
    }

    /// <summary>The question's name points forwards into the answer section (tshark accepts that).</summary>
    private static byte[] ForwardPointer() =>
        new DnsMessageBuilder().Header(4, 0x8180, 1, 1).Labels("www"u8.ToArray()).Pointer(22).TypeClass(TypeAaaa, ClassIn)
            .Labels("example"u8.ToArray()).Bytes(0).Record(TypeAaaa, ClassIn, Bytes(A1)).ToArray();

    private static byte[] ManyAaaa(int n)
    {
        var b = new DnsMessageBuilder().Header(5, 0x8180, 1, n).Name("many").TypeClass(TypeAaaa, ClassIn);
        for (int i = 0; i < n; i++)
        {
            var a = new Ipv6Address(0x20010db800000000, (ulong)i);
            b.Pointer(12).Record(TypeAaaa, ClassIn, Bytes(a));
        }

        return b.ToArray();
    }

    public static IEnumerable<object[]> Corpus() =>
    [
        ["query", Query()],
        ["response", Response()],
        ["nxdomain", NxDomain()],
        ["root", RootQuery()],
        ["self-loop", SelfLoop()],
        ["two-pointer-loop", TwoPointerLoop()],
        ["long-loop", LongLoop()],
        ["forward-pointer", ForwardPointer()],
        ["many-aaaa", ManyAaaa(20)],
    ];

    private static byte[] CorpusMessage(string name) => (byte[])Corpus().Single(c => (string)c[0] == name)[1];

    [Fact]
    public void Query_header_and_question()
    {
        var info = Parse(Query());
        Assert.Equal(DnsStatus.Ok, info.Status);
        Assert.True(info.HeaderComplete);
        Assert.Equal(0xBEEF, info.Id);
        Assert.Equal(0x0100, info.Flags);
        Assert.False(info.IsResponse);
        Assert.Equal(0, info.Opcode);
        Assert.Equal(0, info.Rcode);
        Assert.Equal((1, 0, 0, 0), (info.QuestionCount, info.AnswerCount, info.AuthorityCount, info.AdditionalCount));
        Assert.True(info.HasQuestion);
        Assert.True(info.QuestionComplete);
        Assert.Equal(TypeAaaa, info.QueryType);
        Assert.Equal(ClassIn, info.QueryClass);
        Assert.Equal("www.example.com", info.QueryNameToString());
        Assert.True(info.QueryNameUtf8.SequenceEqual("www.example.com"u8));
        Span<char> chars = stackalloc char[64];
        Assert.Equal("www.example.com", new string(chars[..info.CopyQueryName(chars)]));
        Assert.Equal(0, info.AaaaCount);
    }

    [Fact]
    public void Response_keeps_aaaa_order_and_counts_all_sections()
    {
        var info = Parse(Response());
        Assert.Equal(DnsStatus.Ok, info.Status);
        Assert.True(info.IsResponse);
        Assert.Equal("www.example.com", info.QueryNameToString());
        Assert.Equal(4, info.AaaaCount);
        Assert.Equal(new[] { A1, A2, A3, A4 }, Aaaas(info));
    }

    [Fact]
    public void Aaaa_beyond_capacity_are_counted_not_stored()
    {
        var info = Parse(ManyAaaa(20));
        Assert.Equal(DnsStatus.Ok, info.Status);
        Assert.Equal(20, info.AaaaCount);
        Assert.Equal(DnsInfo.AaaaCapacity, info.StoredAaaaCount);
        Assert.Equal(new Ipv6Address(0x20010db800000000, 15), info.GetAaaa(15));
        Assert.Throws<ArgumentOutOfRangeException>(() => info.GetAaaa(16));
        Assert.Throws<ArgumentOutOfRangeException>(() => info.GetAaaa(-1));
    }

    [Fact]
    public void Aaaa_with_wrong_rdata_length_is_flagged_not_counted()
    {
        var message = new DnsMessageBuilder().Header(1, 0x8180, 1, 3).Name("a").TypeClass(TypeAaaa, ClassIn)
            .Pointer(12).Record(TypeAaaa, ClassIn, [1, 2, 3, 4])
            .Pointer(12).Record(TypeAaaa, ClassIn, [])
            .Pointer(12).Record(TypeAaaa, 0x8001, Bytes(A2)) // mDNS cache-flush bit still counts
            .ToArray();
        var info = Parse(message);
        Assert.Equal(DnsStatus.BadAaaaLength, info.Status);
        Assert.Equal(new[] { A2 }, Aaaas(info));
    }

    [Fact]
    public void Compressed_and_forward_pointers_expand()
    {
        var info = Parse(ForwardPointer());
        Assert.Equal(DnsStatus.Ok, info.Status);
        Assert.Equal("www.example", info.QueryNameToString());
        Assert.Equal(new[] { A1 }, Aaaas(info));

        // Record names compressed to the question and to a suffix of it are walked to reach the AAAA data.
        Assert.Equal(4, Parse(Response()).AaaaCount);
    }

    [Theory]
    [InlineData("self-loop")]
    [InlineData("two-pointer-loop")]
    [InlineData("long-loop")]
    public void Pointer_loops_are_reported_not_thrown(string name)
    {
        var info = Parse(CorpusMessage(name));
        Assert.True(info.Status.HasFlag(DnsStatus.PointerLoop), info.Status.ToString());
        Assert.False(info.Status.HasFlag(DnsStatus.WalkLimit));
        Assert.True(info.HasQuestion);
        Assert.Equal("<Name contains a pointer that loops>", info.QueryNameToString());
    }

    [Fact]
    public void Loop_in_a_record_name_stops_nothing_but_is_flagged()
    {
        var message = new DnsMessageBuilder().Header(1, 0x8180, 1, 2).Name("a").TypeClass(TypeAaaa, ClassIn)
            .Pointer(12 + 7).Record(TypeAaaa, ClassIn, Bytes(A1)) // points at itself
            .Pointer(12).Record(TypeAaaa, ClassIn, Bytes(A2))
            .ToArray();
        var info = Parse(message);
        Assert.Equal(DnsStatus.PointerLoop, info.Status);
        Assert.Equal("a", info.QueryNameToString());
        Assert.Equal(new[] { A1, A2 }, Aaaas(info));
    }

    [Fact]
    public void Pointer_outside_the_message_is_a_bad_name()
    {
        var message = new DnsMessageBuilder().Header(1, 0x0100, 1).Pointer(0x3FFF).TypeClass(TypeAaaa, ClassIn).ToArray();
        var info = Parse(message);
        Assert.Equal(DnsStatus.BadName, info.Status);
        Assert.False(info.HasQuestion);
        Assert.True(info.HeaderComplete);
        Assert.Equal(0, info.QueryNameUtf8.Length);
    }

    [Fact]
    public void Root_query_prints_root()
    {
        var info = Parse(RootQuery());
        Assert.Equal(DnsStatus.Ok, info.Status);
        Assert.Equal("<Root>", info.QueryNameToString());
        Assert.Equal(TypeNs, info.QueryType);
    }

    [Fact]
    public void Nxdomain_rcode_is_the_header_nibble_only()
    {
        var info = Parse(NxDomain());
        Assert.Equal(DnsStatus.Ok, info.Status);
        Assert.True(info.IsResponse);
        Assert.Equal(3, info.Rcode);
        Assert.Equal(0, info.Opcode);
    }

    [Fact]
    public void Cut_header_keeps_the_fields_it_has()
    {
        var info = Parse(Query().AsSpan(0, 5));
        Assert.Equal(DnsStatus.Truncated, info.Status);
        Assert.False(info.HeaderComplete);
        Assert.Equal(5, info.HeaderBytes);
        Assert.Equal(0xBEEF, info.Id);
        Assert.Equal(0x0100, info.Flags);
        Assert.Equal(0, info.QuestionCount);
        Assert.False(info.HasQuestion);

        var empty = Parse([]);
        Assert.Equal(DnsStatus.Truncated, empty.Status);
        Assert.Equal(0, empty.HeaderBytes);
    }

    [Fact]
    public void Name_length_limit_matches_tshark()
    {
        string L(char c, int n) => new(c, n);
        var ok = new DnsMessageBuilder().Header(1, 0, 1).Name(L('c', 63), L('c', 63), L('c', 63), L('d', 61)).TypeClass(1, 1).ToArray();
        var tooLong = new DnsMessageBuilder().Header(1, 0, 1).Name(L('c', 63), L('c', 63), L('c', 63), L('d', 62)).TypeClass(1, 1).ToArray();
        Assert.Equal(253, Parse(ok).QueryNameUtf8.Length);
        var info = Parse(tooLong);
        Assert.Equal(DnsStatus.NameTooLong, info.Status);
        Assert.Equal("<Name too long>", info.QueryNameToString());
    }

    [Fact]
    public void Too_many_records_stops_at_the_bound()
    {
        var info = Parse(ManyAaaa(DnsReader.MaxRecords + 10));
        Assert.Equal(DnsStatus.TooManyRecords, info.Status);
        Assert.Equal(DnsReader.MaxRecords - 1, info.AaaaCount);
    }

    [Fact]
    public void Walk_limit_bounds_work_on_hostile_names()
    {
        // A 32k-label name, then many records whose names point into it: each costs a full walk.
        var b = new DnsMessageBuilder().Header(1, 0x8180, 1, 200).Name([.. Enumerable.Repeat("x", 30000)]).TypeClass(TypeAaaa, ClassIn);
        for (int i = 0; i < 200; i++)
        {
            b.Pointer(12).Record(TypeAaaa, ClassIn, Bytes(A1));
        }

        var info = Parse(b.ToArray());
        Assert.True(info.Status.HasFlag(DnsStatus.WalkLimit), info.Status.ToString());
        Assert.Equal("<Name too long>", info.QueryNameToString());
        Assert.Equal(1, info.AaaaCount);
    }

    [Fact]
    public void Trailing_bytes_are_flagged()
    {
        var info = Parse([.. Query(), 0xAA]);
        Assert.Equal(DnsStatus.TrailingData, info.Status);
        Assert.Equal("www.example.com", info.QueryNameToString());
    }

    [Fact]
    public void Reset_clears_a_reused_record()
    {
        var info = default(DnsInfo);
        DnsReader.Read(Response(), ref info);
        DnsReader.Read(Query().AsSpan(0, 3), ref info);
        Assert.Equal(0, info.AaaaCount);
        Assert.False(info.HasQuestion);
        Assert.Equal(0, info.QueryNameUtf8.Length);
        Assert.Equal(0, info.Flags);
    }

    [Theory]
    [InlineData(53, 40000, DnsTransportKind.Dns)]
    [InlineData(40000, 53, DnsTransportKind.Dns)]
    [InlineData(5353, 5353, DnsTransportKind.Mdns)]
    [InlineData(40000, 5355, DnsTransportKind.Llmnr)]
    [InlineData(53, 5353, DnsTransportKind.Dns)]
    [InlineData(5353, 53, DnsTransportKind.Dns)]
    [InlineData(5355, 53, DnsTransportKind.Dns)]
    [InlineData(5355, 5353, DnsTransportKind.Mdns)]
    [InlineData(5353, 5355, DnsTransportKind.Mdns)]
    [InlineData(1000, 2000, DnsTransportKind.None)]
    public void Classify_prefers_the_lower_port(ushort src, ushort dst, DnsTransportKind expected) =>
        Assert.Equal(expected, DnsReader.Classify(src, dst));

    [Fact]
    public void Every_cut_matches_the_full_parse_where_present()
    {
        foreach (var entry in Corpus())
        {
            var name = (string)entry[0];
            var full = (byte[])entry[1];
            var whole = Parse(full);
            for (int n = 0; n <= full.Length; n++)
            {
                var cut = Parse(full.AsSpan(0, n));
                var at = $"{name} cut at {n}";
                Assert.True(cut.HeaderBytes == Math.Min(n, 12), at);
                if (n >= 2)
                {
                    Assert.True(whole.Id == cut.Id, at);
                }

                if (n >= 4)
                {
                    Assert.True(whole.Flags == cut.Flags, at);
                }

                if (cut.HeaderComplete)
                {
                    Assert.True((whole.QuestionCount, whole.AnswerCount, whole.AuthorityCount, whole.AdditionalCount) ==
                                (cut.QuestionCount, cut.AnswerCount, cut.AuthorityCount, cut.AdditionalCount), at);
                }

                if (cut.HasQuestion)
                {
                    Assert.True(whole.HasQuestion, at);
                    Assert.True(whole.QueryType == cut.QueryType && whole.QueryClass == cut.QueryClass, at);
                    Assert.True(whole.QueryNameUtf8.SequenceEqual(cut.QueryNameUtf8), at);
                }

                Assert.True(cut.AaaaCount <= whole.AaaaCount, at);
                Assert.Equal(Aaaas(whole).Take(cut.StoredAaaaCount), Aaaas(cut));
                if (n < full.Length && !whole.Status.HasFlag(DnsStatus.TrailingData))
                {
                    // A forward pointer whose target was cut off reads as a bad name rather than a short message.
                    Assert.True((cut.Status & (DnsStatus.Truncated | DnsStatus.BadName)) != 0, $"{at}: {cut.Status}");
                }
                else if (n == full.Length)
                {
                    Assert.Equal(whole.Status, cut.Status);
                }
            }
        }
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        Gen.Byte.Array[0, 700].Sample(bytes =>
        {
            var info = Parse(bytes);
            CheckInvariants(info);
        }, iter: 50_000);
    }

    [Fact]
    public void Random_mutations_of_valid_messages_never_throw()
    {
        var corpus = Corpus().Select(c => (byte[])c[1]).ToArray();
        MutationGen(corpus).Sample(message =>
        {
            var info = Parse(message);
            CheckInvariants(info);
        }, iter: 50_000);
    }

    [Fact]
    public void Reading_allocates_nothing()
    {
        var messages = Corpus().Select(c => (byte[])c[1]).Append(Query()[..20]).ToArray();
        var info = default(DnsInfo);
        for (int i = 0; i < 1000; i++)
        {
            DnsReader.Read(messages[i % messages.Length], ref info);
        }

        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (int i = 0; i < 100_000; i++)
            {
                DnsReader.Read(messages[i % messages.Length], ref info);
            }
        }));
    }

    /// <summary>Byte values that hit label-type and pointer edges more often than uniform bytes do.</summary>
    private static readonly byte[] Interesting = [0x00, 0x01, 0x02, 0x0C, 0x1C, 0x3F, 0x40, 0x41, 0x42, 0x7F, 0x80, 0xC0, 0xC1, 0xFF];

    internal static Gen<byte[]> MutationGen(byte[][] corpus)
    {
        var edit = Gen.Select(Gen.Int[0, 4], Gen.Int[0, int.MaxValue], Gen.Int[0, Interesting.Length - 1], Gen.Byte);
        return Gen.Select(Gen.Int[0, corpus.Length - 1], edit.Array[1, 6]).Select((pick, edits) =>
        {
            var bytes = new List<byte>(corpus[pick]);
            foreach (var (kind, where, special, value) in edits)
            {
                if (bytes.Count == 0)
                {
                    break;
                }

                int pos = where % bytes.Count;
                switch (kind)
                {
                    case 0:
                        bytes[pos] = value;
                        break;
                    case 1:
                        bytes[pos] = Interesting[special];
                        break;
                    case 2:
                        bytes[pos] ^= (byte)(1 << (value & 7));
                        break;
                    case 3:
                        bytes.RemoveRange(pos, bytes.Count - pos);
                        break;
                    default:
                        bytes.Insert(pos, Interesting[special]);
                        break;
                }
            }

            return bytes.ToArray();
        });
    }

    private static void CheckInvariants(in DnsInfo info)
    {
        Assert.InRange(info.HeaderBytes, 0, 12);
        Assert.InRange(info.StoredAaaaCount, 0, DnsInfo.AaaaCapacity);
        Assert.InRange(info.QueryNameUtf8.Length, 0, DnsInfo.QueryNameCapacity);
        Assert.True(Encoding.UTF8.GetCharCount(info.QueryNameUtf8) >= 0);
        Assert.True(System.Text.Unicode.Utf8.IsValid(info.QueryNameUtf8));
        if (!info.HasQuestion)
        {
            Assert.Equal(0, info.QueryNameUtf8.Length);
        }
    }
}

/// <summary>Compares the reader with tshark on hand-made captures; fails, not skips, when tshark is missing.</summary>
public class DnsReaderTsharkTests
{
    private static DnsInfo Parse(byte[] message)
    {
        var info = default(DnsInfo);
        DnsReader.Read(message, ref info);
        return info;
    }

    private static byte[] QueryFor(params byte[][] labels) =>
        new DnsMessageBuilder().Header(0x1234, 0x0100, 1).Labels(labels).Bytes(0).TypeClass(28, 1).ToArray();

    private static byte[] H(string hex) => Convert.FromHexString(hex);

    private static byte[] A(string ascii) => Encoding.Latin1.GetBytes(ascii);

    /// <summary>Names with odd bytes, each as a list of labels; the expected text is what tshark 4.0.17 printed.</summary>
    public static TheoryData<string, string> EscapeCases() => new()
    {
        { "www|example|com", "www.example.com" },
        { "a b|c", "a b.c" },
        { "a.b|c", "a.b.c" },
        { "a\\b|c", "a\\b.c" },
        { "a\"b'(c);@$|x", "a\"b'(c);@$.x" },
        { "#00|x", "\\000.x" },
        { "#0102071F7F|x", "\\001\\002\\a\\037\\177.x" },
        { "#08090A0B0C0D", "\\b\\t\\n\\v\\f\\r" },
        { "#C3A9|x", "é.x" },
        { "#E9|x", "\uFFFD.x" },
        { "#E282|x", "\uFFFD.x" },
        { "#E2|#82AC", "\uFFFD.\uFFFD\uFFFD" },
        { "#C080", "\\u0000" },
        { "#C1BF", "\\u007F" },
        { "#EDA080", "\uFFFD" },
        { "#F4908080", "\uFFFD" },
        { "#F888808080", "\uFFFD" },
        { "#FEFF80", "\uFFFD\uFFFD\uFFFD" },
        { "#C280C29F", "\\u0080\\u009F" },
        { "#C2A0E280A8", "\u00A0\u2028" },
        { "#EFBBBFE2808B", "\\uFEFF\\u200B" },
        { "#F3A08081", "\\U000E0001" },
        { "#EFBFBF", "\\uFFFF" },
        { "#F09F9880", "\U0001F600" },
        { "#EE8080", "\uE000" },
    };

    private static byte[][] LabelsOf(string spec) =>
        spec.Split('|').Select(l => l.StartsWith('#') ? H(l[1..]) : A(l)).ToArray();

    [Theory]
    [MemberData(nameof(EscapeCases))]
    public void Escapes_follow_tshark_rules(string labels, string expected) =>
        Assert.Equal(expected, Parse(QueryFor(LabelsOf(labels))).QueryNameToString());

    [Fact]
    public void Escaped_names_match_tshark()
    {
        var messages = EscapeCases().Select(row => QueryFor(LabelsOf((string)row[0]))).ToList();
        messages.AddRange(NameEdgeCases());
        CompareQuestions(messages);
    }

    /// <summary>Label-type, pointer and length corners where tshark has particular answers.</summary>
    private static IEnumerable<byte[]> NameEdgeCases()
    {
        static DnsMessageBuilder Q() => new DnsMessageBuilder().Header(0x1234, 0x0100, 1);
        string L(char c, int n) => new(c, n);
        yield return Q().Name(L('c', 63), L('c', 63), L('c', 63), L('d', 61)).TypeClass(1, 1).ToArray();
        yield return Q().Name(L('c', 63), L('c', 63), L('c', 63), L('d', 62)).TypeClass(1, 1).ToArray();
        yield return Q().Labels([.. Enumerable.Repeat(H("01"), 63), H("0203")]).Bytes(0).TypeClass(1, 1).ToArray();
        yield return Q().Labels([.. Enumerable.Repeat(H("FF"), 84)]).Bytes(0).TypeClass(1, 1).ToArray();
        yield return Q().Bytes(0).TypeClass(2, 1).ToArray();
        yield return Q().Pointer(12).TypeClass(28, 1).ToArray();
        yield return Q().Labels(A("a")).Pointer(16).Pointer(12).TypeClass(28, 1).ToArray();
        yield return Q().Pointer(16).TypeClass(28, 1).Labels(A("b")).Bytes(0).ToArray();
        yield return Q().Labels(A("a")).Pointer(18).TypeClass(28, 1).Labels(A("c")).Bytes(0).ToArray();
        yield return Q().Pointer(18).TypeClass(28, 1).Labels(A("fwd")).Bytes(0).ToArray();
        yield return Q().Pointer(0x3FF).TypeClass(28, 1).ToArray();
        yield return Q().Labels(A("x")).Pointer(0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(0x80, 1, (byte)'a', 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(0x42, 1, (byte)'a', 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(0x40, 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(1, (byte)'a', 0x42, 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(0x41, 8, 0xAB, 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(0x41, 8, 0xAB, 1, (byte)'a', 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(1, (byte)'a', 0x41, 12, 0xAB, 0xCD, 1, (byte)'b', 0).TypeClass(28, 1).ToArray();
        yield return Q().Bytes(0x41, 0, 0, 0).TypeClass(28, 1).ToArray();
        yield return Q().Pointer(18).TypeClass(28, 1).Bytes(0x41, 8, 0xAB, 0).ToArray();
        yield return Q().Pointer(18).TypeClass(28, 1).Bytes(1, 0, 0).ToArray();
        yield return Q().Bytes(1, 0, 0).TypeClass(28, 1).ToArray();
        yield return Q().Pointer(18).TypeClass(28, 1).Bytes(0x42).ToArray();
        yield return Q().Labels(A("cut")).ToArray();
        yield return Q().Labels(A("a")).Bytes(0, 0).ToArray();
        yield return Q().ToArray();
        yield return Q().ToArray()[..5];

        // Pointer chains of 254, 255 and 256 pointers: tshark gives up after 255.
        foreach (int pointers in new[] { 254, 255, 256 })
        {
            var b = Q().Pointer(18).TypeClass(28, 1);
            for (int k = 1; k < pointers; k++)
            {
                b.Pointer(18 + (2 * k));
            }

            yield return b.Labels(A("z")).Bytes(0).ToArray();
        }

        // A label run closed into a loop: tshark circles 255 times, the reader spots the revisit.
        var loop = Q().Pointer(18).TypeClass(28, 1);
        for (int k = 0; k < 300; k++)
        {
            loop.Labels(A("x"));
        }

        yield return loop.Pointer(18).ToArray();
    }

    [Fact]
    public void Every_code_point_formats_like_tshark()
    {
        // Each label holds one code point (encoded even for surrogates), so the output splits back per code point.
        var messages = new List<byte[]>();
        var current = new List<byte[]>();
        int size = 0;
        Span<byte> buffer = stackalloc byte[4];
        for (int cp = 0x80; cp < 0x110000; cp++)
        {
            int n = EncodeLenient(cp, buffer);
            if (size + n + 1 > 240)
            {
                messages.Add(QueryFor([.. current]));
                current.Clear();
                size = 0;
            }

            current.Add(buffer[..n].ToArray());
            size += n + 1;
        }

        messages.Add(QueryFor([.. current]));
        CompareQuestions(messages);
    }

    [Fact]
    public void Corpus_and_mutations_match_tshark()
    {
        var corpus = DnsReaderTests.Corpus().Select(c => (byte[])c[1]).Where(m => m.Length < 4000).Concat(NameEdgeCases()).ToArray();
        var random = new Random(20240611);
        var messages = corpus.ToList();
        for (int i = 0; i < 6000; i++)
        {
            messages.Add(Mutate(corpus[random.Next(corpus.Length)], random));
        }

        CompareQuestions(messages);

        var rows = Tshark.Fields(messages, "a", "dns.aaaa", "dns.flags.rcode");
        for (int i = 0; i < messages.Count; i++)
        {
            var info = Parse(messages[i]);
            var context = $"message {i} ({Convert.ToHexString(messages[i])}), {Tshark.Version}";
            if (info.HeaderBytes >= 4 && info.IsResponse)
            {
                // tshark shows the reply code for responses only.
                Assert.True(rows[i][1] == info.Rcode.ToString(System.Globalization.CultureInfo.InvariantCulture), $"rcode: {context}");
            }

            if (info.Status.HasFlag(DnsStatus.BadAaaaLength) || info.Status.HasFlag(DnsStatus.TooManyRecords))
            {
                continue; // tshark reads 16 bytes whatever the RDLENGTH; not mirrored.
            }

            // tshark can stop earlier (it decodes other RDATA and may throw there), so its list is a prefix of ours.
            var ours = Enumerable.Range(0, info.StoredAaaaCount).Select(k => info.GetAaaa(k).ToString()).ToList();
            var theirs = rows[i][0].Length == 0 ? [] : rows[i][0].Split(',').ToList();
            Assert.True(theirs.Count <= info.AaaaCount, $"tshark found more AAAA ({theirs.Count} > {info.AaaaCount}): {context}");
            Assert.True(ours.Take(theirs.Count).SequenceEqual(theirs.Take(ours.Count)), $"AAAA differ: {string.Join(",", ours)} vs {rows[i][0]}: {context}");
        }
    }

    [Fact]
    public void Classify_matches_tshark()
    {
        ushort[] ports = [53, 5353, 5355, 1000, 40000];
        var message = new DnsMessageBuilder().Header(1, 0x0100, 1).Name("a").TypeClass(28, 1).ToArray();
        var packets = (from s in ports from d in ports select (s, d, message)).ToList();
        // tshark's "dns" UDP heuristic also claims DNS-shaped payloads on other ports; ports alone cannot mirror that.
        var rows = Tshark.Fields(packets, ["--disable-heuristic", "dns_udp"], "f", "frame.protocols");
        for (int i = 0; i < packets.Count; i++)
        {
            var protocol = rows[i][0].Split(':')[^1];
            var expected = protocol switch
            {
                "dns" => DnsTransportKind.Dns,
                "mdns" => DnsTransportKind.Mdns,
                "llmnr" => DnsTransportKind.Llmnr,
                _ => DnsTransportKind.None,
            };
            Assert.True(expected == DnsReader.Classify(packets[i].s, packets[i].d), $"{packets[i].s} -> {packets[i].d}: tshark says {rows[i][0]}");
        }
    }

    /// <summary>dns.qry.name and dns.qry.type (first occurrence) against HasQuestion, the name and the type.</summary>
    private static void CompareQuestions(List<byte[]> messages)
    {
        var rows = Tshark.Fields(messages, "f", "dns.qry.name", "dns.qry.type", "dns.id");
        for (int i = 0; i < messages.Count; i++)
        {
            var info = Parse(messages[i]);
            var context = $"message {i} ({Convert.ToHexString(messages[i])}), {Tshark.Version}";
            bool tsharkHasQuestion = rows[i][1].Length > 0;
            Assert.True(tsharkHasQuestion == info.HasQuestion, $"question present: tshark {tsharkHasQuestion}, ours {info.HasQuestion} ({info.Status}): {context}");
            // tshark shows the ID only together with the flags; the reader keeps it from 2 bytes on.
            Assert.True(rows[i][2].Length > 0 == info.HeaderBytes >= 4, $"id present: {context}");
            if (info.HasQuestion)
            {
                Assert.True(rows[i][0] == info.QueryNameToString(), $"name: tshark '{rows[i][0]}', ours '{info.QueryNameToString()}': {context}");
                Assert.True(rows[i][1] == info.QueryType.ToString(System.Globalization.CultureInfo.InvariantCulture), $"type: {context}");
            }
        }
    }

    /// <summary>UTF-8 bit pattern for any value, surrogates included, which strict encoders refuse.</summary>
    private static int EncodeLenient(int cp, Span<byte> dest)
    {
        if (cp < 0x800)
        {
            dest[0] = (byte)(0xC0 | (cp >> 6));
            dest[1] = (byte)(0x80 | (cp & 0x3F));
            return 2;
        }

        if (cp < 0x10000)
        {
            dest[0] = (byte)(0xE0 | (cp >> 12));
            dest[1] = (byte)(0x80 | ((cp >> 6) & 0x3F));
            dest[2] = (byte)(0x80 | (cp & 0x3F));
            return 3;
        }

        dest[0] = (byte)(0xF0 | (cp >> 18));
        dest[1] = (byte)(0x80 | ((cp >> 12) & 0x3F));
        dest[2] = (byte)(0x80 | ((cp >> 6) & 0x3F));
        dest[3] = (byte)(0x80 | (cp & 0x3F));
        return 4;
    }

    private static readonly byte[] Interesting = [0x00, 0x01, 0x02, 0x0C, 0x10, 0x1C, 0x3F, 0x40, 0x41, 0x42, 0x7F, 0x80, 0xC0, 0xC1, 0xFF];

    private static byte[] Mutate(byte[] original, Random random)
    {
        var bytes = new List<byte>(original);
        int edits = random.Next(1, 5);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int pos = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0:
                    bytes[pos] = (byte)random.Next(256);
                    break;
                case 1:
                case 2:
                    bytes[pos] = Interesting[random.Next(Interesting.Length)];
                    break;
                case 3:
                    bytes[pos] ^= (byte)(1 << random.Next(8));
                    break;
                case 4:
                    bytes.RemoveRange(pos, bytes.Count - pos);
                    break;
                default:
                    bytes.Insert(pos, Interesting[random.Next(Interesting.Length)]);
                    break;
            }
        }

        return [.. bytes];
    }
}

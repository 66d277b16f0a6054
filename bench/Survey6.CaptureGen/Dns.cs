using System.Text;

namespace Survey6.CaptureGen;

/// <summary>A query seen on the wire whose response is still to come, so responses echo real IDs, ports and questions.</summary>
internal sealed class PendingQuery
{
    public byte[] Name { get; } = new byte[300];

    public int NameLength { get; set; }

    /// <summary>Offset within <see cref="Name"/> of the zone labels; responses point into it.</summary>
    public int ZoneOffset { get; set; }

    public ushort Id { get; set; }

    public ushort Type { get; set; }

    public ushort ClientPort { get; set; }

    public bool Edns { get; set; }

    public bool NxZone { get; set; }

    public Endpoint Client { get; set; }

    public Endpoint Server { get; set; }

    public Endpoint4 Client4 { get; set; }

    public Endpoint4 Server4 { get; set; }
}

/// <summary>Outstanding queries, oldest first; when full the oldest is forgotten and stays unanswered, as some do.</summary>
internal sealed class QueryRing
{
    private readonly PendingQuery[] _items;
    private int _head;

    public QueryRing(int capacity)
    {
        _items = new PendingQuery[capacity];
        for (var i = 0; i < capacity; i++)
        {
            _items[i] = new PendingQuery();
        }
    }

    public int Count { get; private set; }

    public PendingQuery Push()
    {
        if (Count == _items.Length)
        {
            _head = (_head + 1) % _items.Length;
            Count--;
        }

        var slot = _items[(_head + Count) % _items.Length];
        Count++;
        return slot;
    }

    /// <summary>Oldest entry; valid until the next <see cref="Push"/>.</summary>
    public PendingQuery Pop()
    {
        var item = _items[_head];
        _head = (_head + 1) % _items.Length;
        Count--;
        return item;
    }
}

/// <summary>DNS messages over UDP/53 and mDNS, written straight into a frame with real compression pointers.</summary>
internal static class Dns
{
    public const ushort A = 1, Ns = 2, Cname = 5, Soa = 6, Ptr = 12, Mx = 15, Txt = 16, Aaaa = 28, Srv = 33, Opt = 41, Https = 65;

    private static readonly byte[][] Words = Labels("www mail api cdn static img login vpn ns1 ntp git wiki m app update time push auth media docs");
    private static readonly byte[][][] Zones = [Labels("example com"), Labels("example net"), Labels("example org"), Labels("example"), Labels("test"), Labels("invalid")];
    private static readonly int[] ZoneWeights = [40, 20, 15, 8, 10, 7];
    private static readonly byte[][][] Services = [Labels("_sip _udp"), Labels("_xmpp-server _tcp"), Labels("_ldap _tcp"), Labels("_imaps _tcp")];
    private static readonly ushort[] ServicePorts = [5060, 5269, 389, 993];
    private static readonly ushort[] QueryTypes = [Aaaa, A, Https, Ptr, Mx, Txt, Ns, Soa, Srv];
    private static readonly int[] QueryTypeWeights = [42, 28, 10, 7, 4, 4, 2, 1, 2];
    private static readonly byte[] Ip6Arpa = [3, (byte)'i', (byte)'p', (byte)'6', 4, (byte)'a', (byte)'r', (byte)'p', (byte)'a'];
    private static readonly byte[] Local = [5, (byte)'l', (byte)'o', (byte)'c', (byte)'a', (byte)'l', 0];
    private static readonly byte[] ExampleNet = [7, (byte)'e', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', 3, (byte)'n', (byte)'e', (byte)'t', 0];

    private static byte[][] Labels(string dotted) => dotted.Split(' ').Select(Encoding.ASCII.GetBytes).ToArray();

    private static int Weighted(Rng rng, int[] weights)
    {
        var r = rng.Below(weights.Sum());
        for (var i = 0; i < weights.Length; i++)
        {
            r -= weights[i];
            if (r < 0)
            {
                return i;
            }
        }

        return weights.Length - 1;
    }

    /// <summary>Picks a question: mostly AAAA and A for names under documentation zones, plus ip6.arpa PTR lookups.</summary>
    public static void Compose(PendingQuery q, Rng rng, Network net)
    {
        q.Type = QueryTypes[Weighted(rng, QueryTypeWeights)];
        q.Id = rng.U16();
        q.Edns = rng.Chance(0.65);
        q.NxZone = false;
        var name = q.Name.AsSpan();
        var n = 0;
        if (q.Type == Ptr)
        {
            var target = rng.Chance(0.5) ? rng.Pick(net.Clients).Addr : rng.Pick(net.Remote).Addr;
            for (var i = 0; i < 32; i++)
            {
                var nibble = (int)((i < 16 ? target.Lo >> (4 * i) : target.Hi >> (4 * (i - 16))) & 0xf);
                name[n++] = 1;
                name[n++] = (byte)"0123456789abcdef"[nibble];
            }

            q.ZoneOffset = n;
            Ip6Arpa.CopyTo(name[n..]);
            n += Ip6Arpa.Length;
            name[n++] = 0;
            q.NameLength = n;
            return;
        }

        var zone = Weighted(rng, ZoneWeights);
        q.NxZone = zone == Zones.Length - 1;
        if (q.Type == Srv)
        {
            foreach (var label in Services[rng.Below(Services.Length)])
            {
                n += PutLabel(name[n..], label);
            }
        }
        else
        {
            var r = rng.Below(100);
            if (r < 35)
            {
                n += PutNumberedLabel(name[n..], r < 25 ? "host"u8 : "edge"u8, rng.Below(10_000));
            }

            n += PutLabel(name[n..], rng.Pick(Words));
        }

        q.ZoneOffset = n;
        foreach (var label in Zones[zone])
        {
            n += PutLabel(name[n..], label);
        }

        name[n++] = 0;
        q.NameLength = n;
    }

    private static int PutLabel(Span<byte> d, ReadOnlySpan<byte> label)
    {
        d[0] = (byte)label.Length;
        label.CopyTo(d[1..]);
        return label.Length + 1;
    }

    private static int PutNumberedLabel(Span<byte> d, ReadOnlySpan<byte> prefix, int number)
    {
        prefix.CopyTo(d[1..]);
        var n = prefix.Length;
        Span<byte> digits = stackalloc byte[10];
        var k = 0;
        do
        {
            digits[k++] = (byte)('0' + (number % 10));
            number /= 10;
        }
        while (number > 0);

        while (k > 0)
        {
            d[1 + n++] = digits[--k];
        }

        d[0] = (byte)n;
        return n + 1;
    }

    private static void Label(Frame f, ReadOnlySpan<byte> prefix, int number)
    {
        var n = PutNumberedLabel(f.Buf.AsSpan(f.Len), prefix, number);
        f.Len += n;
    }

    private static void Pointer(Frame f, int offset) => f.U16(0xc000 | offset);

    public static void WriteQuery(Frame f, PendingQuery q)
    {
        f.U16(q.Id);
        f.U16(0x0100);
        f.U16(1);
        f.U16(0);
        f.U16(0);
        f.U16(q.Edns ? 1 : 0);
        f.Bytes(q.Name.AsSpan(0, q.NameLength));
        f.U16(q.Type);
        f.U16(1);
        if (q.Edns)
        {
            WriteOpt(f, false);
        }
    }

    private static void WriteOpt(Frame f, bool dnssecOk)
    {
        f.U8(0);
        f.U16(Opt);
        f.U16(1232);
        f.U32(dnssecOk ? 0x8000u : 0u);
        f.U16(0);
    }

    /// <summary>
    /// Answers <paramref name="q"/>. Owner names are pointers to the question (0xc00c) or into a CNAME target that
    /// itself ends in a pointer to the zone, so parsers must follow chained compression.
    /// </summary>
    public static void WriteResponse(Frame f, PendingQuery q, Rng rng, Network net)
    {
        var m = f.Len;
        var rcode = q.NxZone || (q.Type == Ptr && rng.Chance(0.3)) ? 3 : rng.Below(100) switch
        {
            < 2 => 2,
            < 3 => 5,
            _ => 0,
        };
        f.U16(q.Id);
        f.U16(0x8180 | rcode);
        f.U16(1);
        var counts = f.Len;
        f.Zeros(6);
        f.Bytes(q.Name.AsSpan(0, q.NameLength));
        f.U16(q.Type);
        f.U16(1);
        const int question = 12;
        var zone = question + q.ZoneOffset;
        int an = 0, ns = 0;
        var ttl = (uint)rng.Range(30, 86_400);
        if (rcode == 3)
        {
            WriteSoa(f, zone, rng);
            ns = 1;
        }
        else if (rcode == 0)
        {
            var owner = question;
            if ((q.Type == Aaaa || q.Type == A) && rng.Chance(0.3))
            {
                // CNAME to edgeNN.<zone>: the target's own name ends in a pointer to the zone.
                var rd = Rr(f, owner, Cname, ttl);
                owner = f.Len - m;
                Label(f, "edge"u8, rng.Below(100));
                Pointer(f, zone);
                EndRdata(f, rd);
                an++;
            }

            switch (q.Type)
            {
                case Aaaa when rng.Chance(0.05):
                case Https when rng.Chance(0.5):
                    WriteSoa(f, zone, rng);
                    ns = 1;
                    break;
                case Aaaa:
                    for (var k = rng.Range(1, 4); k > 0; k--, an++)
                    {
                        var rd = Rr(f, owner, Aaaa, ttl);
                        f.Addr(rng.Chance(0.7) ? rng.Pick(net.Remote).Addr : new V6(0x2001_0db8_0000_0000UL | rng.U32(), rng.Next()));
                        EndRdata(f, rd);
                    }

                    break;
                case A:
                    for (var k = rng.Range(1, 3); k > 0; k--, an++)
                    {
                        var rd = Rr(f, owner, A, ttl);
                        f.U32(rng.Pick(net.Remote4).Addr);
                        EndRdata(f, rd);
                    }

                    break;
                case Https:
                {
                    var rd = Rr(f, owner, Https, ttl);
                    f.U16(1);
                    f.U8(0);
                    f.U16(1);
                    f.U16(6);
                    f.Bytes("\u0002h2\u0002h3"u8);
                    f.U16(6);
                    f.U16(16);
                    f.Addr(rng.Pick(net.Remote).Addr);
                    EndRdata(f, rd);
                    an++;
                    break;
                }

                case Ptr:
                {
                    var rd = Rr(f, owner, Ptr, ttl);
                    Label(f, "host"u8, rng.Below(10_000));
                    f.Bytes(ExampleNet);
                    EndRdata(f, rd);
                    an++;
                    break;
                }

                case Mx:
                    for (var k = rng.Range(1, 2); k > 0; k--, an++)
                    {
                        var rd = Rr(f, owner, Mx, ttl);
                        f.U16(10 * k);
                        Label(f, "mx"u8, k);
                        Pointer(f, zone);
                        EndRdata(f, rd);
                    }

                    break;
                case Txt:
                {
                    var rd = Rr(f, owner, Txt, ttl);
                    f.U8(11);
                    f.Bytes("v=spf1 -all"u8);
                    EndRdata(f, rd);
                    an++;
                    break;
                }

                case Ns:
                    for (var k = 1; k <= 2; k++, an++)
                    {
                        var rd = Rr(f, owner, Ns, ttl);
                        Label(f, "ns"u8, k);
                        Pointer(f, zone);
                        EndRdata(f, rd);
                    }

                    break;
                case Soa:
                    WriteSoa(f, owner, rng);
                    an++;
                    break;
                case Srv:
                {
                    var service = 0;
                    for (var s = 0; s < Services.Length; s++)
                    {
                        if (q.Name[1] == Services[s][0][0] && q.Name[2] == Services[s][0][1] && q.Name[3] == Services[s][0][2])
                        {
                            service = s;
                        }
                    }

                    var rd = Rr(f, owner, Srv, ttl);
                    f.U16(10);
                    f.U16(60);
                    f.U16(ServicePorts[service]);
                    Label(f, "srv"u8, rng.Below(4));
                    Pointer(f, zone);
                    EndRdata(f, rd);
                    an++;
                    break;
                }
            }
        }

        if (q.Edns)
        {
            WriteOpt(f, rng.Chance(0.3));
        }

        f.PutU16(counts, an);
        f.PutU16(counts + 2, ns);
        f.PutU16(counts + 4, q.Edns ? 1 : 0);
    }

    private static int Rr(Frame f, int ownerOffset, ushort type, uint ttl)
    {
        Pointer(f, ownerOffset);
        f.U16(type);
        f.U16(1);
        f.U32(ttl);
        var rd = f.Len;
        f.U16(0);
        return rd;
    }

    private static void EndRdata(Frame f, int rdlengthAt) => f.PutU16(rdlengthAt, f.Len - rdlengthAt - 2);

    private static void WriteSoa(Frame f, int zone, Rng rng)
    {
        var rd = Rr(f, zone, Soa, 3600);
        Label(f, "ns"u8, 1);
        Pointer(f, zone);
        f.U8(10);
        f.Bytes("hostmaster"u8);
        Pointer(f, zone);
        f.U32(2_025_010_100u + (uint)rng.Below(99));
        f.U32(7200);
        f.U32(3600);
        f.U32(1_209_600);
        f.U32(300);
        EndRdata(f, rd);
    }

    /// <summary>mDNS: a one-shot AAAA query for hostN.local, or an unsolicited announcement with the cache-flush bit.</summary>
    public static void WriteMdns(Frame f, bool announce, int host, V6 address)
    {
        f.U16(0);
        f.U16(announce ? 0x8400 : 0);
        f.U16(announce ? 0 : 1);
        f.U16(announce ? 1 : 0);
        f.U16(0);
        f.U16(0);
        Label(f, "host"u8, host);
        f.Bytes(Local);
        f.U16(Aaaa);
        if (!announce)
        {
            f.U16(1);
            return;
        }

        f.U16(0x8001);
        f.U32(120);
        f.U16(16);
        f.Addr(address);
    }
}

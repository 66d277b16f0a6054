using System.Buffers.Binary;

namespace Survey6.CaptureGen;

/// <summary>An IPv6 address as two big-endian halves; kept apart from the packet core so the generator stays an independent oracle.</summary>
internal readonly record struct V6(ulong Hi, ulong Lo)
{
    public static readonly V6 Unspecified = new(0, 0);
    public static readonly V6 AllNodes = new(0xff02UL << 48, 1);
    public static readonly V6 AllRouters = new(0xff02UL << 48, 2);
    public static readonly V6 MldV2Routers = new(0xff02UL << 48, 0x16);
    public static readonly V6 Mdns = new(0xff02UL << 48, 0xfb);
    public static readonly V6 DhcpAgents = new(0xff02UL << 48, 0x1_0002);

    public static V6 LinkLocal(ulong iid) => new(0xfe80UL << 48, iid);

    public static V6 SolicitedNode(V6 target) => new(0xff02UL << 48, 0x0000_0001_ff00_0000UL | (target.Lo & 0xff_ffff));

    public bool IsMulticast => (Hi >> 56) == 0xff;

    /// <summary>RFC 2464 mapping of a multicast group to 33:33:xx:xx:xx:xx.</summary>
    public ulong MulticastMac => 0x3333_0000_0000UL | (Lo & 0xffff_ffff);

    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt64BigEndian(d, Hi);
        BinaryPrimitives.WriteUInt64BigEndian(d[8..], Lo);
    }
}

/// <summary>
/// One side of a conversation as the capture point sees it: <see cref="HopLimit"/> is already reduced by the
/// hops between the sender and the tap, and remote senders appear behind the gateway's MAC.
/// </summary>
internal readonly record struct Endpoint(V6 Addr, ulong Mac, bool Local, byte HopLimit, ulong LinkLocalIid)
{
    public V6 LinkLocal => V6.LinkLocal(LinkLocalIid);
}

internal readonly record struct Endpoint4(uint Addr, ulong Mac, bool Local, byte Ttl);

/// <summary>State of the IPv6 header being built: where the last next-header byte sits and which destination the upper-layer checksum covers.</summary>
internal struct Ip6Build
{
    public int Start;
    public int NextHeaderAt;
    public V6 Src;
    public V6 FinalDst;
}

/// <summary>A frame under construction. Headers are written front to back and lengths and checksums patched at the end.</summary>
internal sealed class Frame
{
    public const int Capacity = 16_384;

    private int _tags;
    private ushort _outerTci, _innerTci;

    public Frame(byte[] buffer) => Buf = buffer;

    public byte[] Buf { get; }

    public int Len { get; set; }

    /// <summary>MACs suggested by the innermost builder; a tunnel wrapper replaces them with its outer endpoints.</summary>
    public ulong SrcMac { get; set; }

    public ulong DstMac { get; set; }

    public int Tags => _tags;

    public Span<byte> Tail(int length)
    {
        var s = Buf.AsSpan(Len, length);
        Len += length;
        return s;
    }

    public void U8(int v) => Buf[Len++] = (byte)v;

    public void U16(int v)
    {
        BinaryPrimitives.WriteUInt16BigEndian(Buf.AsSpan(Len), (ushort)v);
        Len += 2;
    }

    public void U32(uint v)
    {
        BinaryPrimitives.WriteUInt32BigEndian(Buf.AsSpan(Len), v);
        Len += 4;
    }

    public void Mac(ulong mac)
    {
        for (var i = 5; i >= 0; i--)
        {
            Buf[Len++] = (byte)(mac >> (8 * i));
        }
    }

    public void Addr(V6 a)
    {
        a.Write(Buf.AsSpan(Len));
        Len += 16;
    }

    public void Bytes(ReadOnlySpan<byte> b)
    {
        b.CopyTo(Buf.AsSpan(Len));
        Len += b.Length;
    }

    public void Zeros(int n)
    {
        Buf.AsSpan(Len, n).Clear();
        Len += n;
    }

    public void Random(Rng rng, int n) => rng.Fill(Tail(n));

    /// <summary>
    /// Random application bytes that no UDP heuristic accepts: RTP/RTCP key on version 2 in the top bits of
    /// octet 0, Thrift on 0x80/0x82 at octet 0 (or 4, when framed), OSI CLTP on a 0x4_ TPDU code in octet 1.
    /// Without this about one opaque datagram in a hundred would be claimed by one of them and flagged malformed.
    /// </summary>
    public void Opaque(Rng rng, int n)
    {
        var at = Len;
        rng.Fill(Tail(n));
        if (n > 0)
        {
            Buf[at] &= 0x3f;
        }

        if (n > 1)
        {
            Buf[at + 1] |= 0x80;
        }

        if (n > 4)
        {
            Buf[at + 4] &= 0x7f;
        }
    }

    /// <summary>A QUIC 1-RTT packet as an observer sees it: short header (fixed bit set), then protected bytes.</summary>
    public void QuicShortHeader(Rng rng, int n)
    {
        var at = Len;
        Opaque(rng, n);
        Buf[at] |= 0x40;
    }

    public void PutU16(int at, int v) => BinaryPrimitives.WriteUInt16BigEndian(Buf.AsSpan(at), (ushort)v);

    public void PutU32(int at, uint v) => BinaryPrimitives.WriteUInt32BigEndian(Buf.AsSpan(at), v);

    public void Decimal(long value)
    {
        Span<byte> tmp = stackalloc byte[20];
        var n = 0;
        do
        {
            tmp[n++] = (byte)('0' + (value % 10));
            value /= 10;
        }
        while (value > 0);

        while (n > 0)
        {
            Buf[Len++] = tmp[--n];
        }
    }

    /// <summary>Starts a frame without a link header, for packets that are only quoted or fragmented later.</summary>
    public void BeginBare()
    {
        Len = 0;
        _tags = 0;
    }

    /// <summary>Reserves room for Ethernet and zero, one (802.1Q) or two (802.1ad + 802.1Q) VLAN tags.</summary>
    public void BeginEthernet(int tags, ushort outerTci, ushort innerTci)
    {
        _tags = tags;
        _outerTci = outerTci;
        _innerTci = innerTci;
        Len = 14 + (4 * tags);
    }

    public int LinkHeaderLength => 14 + (4 * _tags);

    public void FinishEthernet(ulong dst, ulong src, ushort etherType)
    {
        var end = Len;
        Len = 0;
        Mac(dst);
        Mac(src);
        if (_tags == 2)
        {
            U16(0x88a8);
            U16(_outerTci);
            U16(0x8100);
            U16(_innerTci);
        }
        else if (_tags == 1)
        {
            U16(0x8100);
            U16(_innerTci);
        }

        U16(etherType);
        Len = end;
    }

    public Ip6Build BeginIpv6(byte trafficClass, uint flowLabel, byte hopLimit, V6 src, V6 dst)
    {
        var b = new Ip6Build { Start = Len, NextHeaderAt = Len + 6, Src = src, FinalDst = dst };
        U32((6u << 28) | ((uint)trafficClass << 20) | (flowLabel & 0xf_ffff));
        U16(0);
        U8(59);
        U8(hopLimit);
        Addr(src);
        Addr(dst);
        return b;
    }

    /// <summary>Links a new extension header into the chain and returns its offset; its own next-header byte is filled later.</summary>
    public int OpenExtension(ref Ip6Build b, byte type)
    {
        Buf[b.NextHeaderAt] = type;
        var at = Len;
        b.NextHeaderAt = at;
        U8(59);
        return at;
    }

    /// <summary>
    /// Closes the packet: next header, payload length, and the upper-layer checksum over the final destination.
    /// <paramref name="complete"/> is false when the bytes after the headers are only a slice of a datagram (a later fragment).
    /// </summary>
    public void EndIpv6(in Ip6Build b, byte proto, int upperStart, bool complete = true)
    {
        Buf[b.NextHeaderAt] = proto;
        PutU16(b.Start + 4, Len - b.Start - 40);
        var upperLength = Len - upperStart;
        var at = ChecksumOffset(proto);
        if (!complete || at < 0 || upperLength < at + 2)
        {
            return;
        }

        if (proto == Proto.Udp)
        {
            PutU16(upperStart + 4, upperLength);
        }

        PutU16(upperStart + at, 0);
        var sum = Checksum.PseudoV6(b.Src, b.FinalDst, proto, upperLength);
        var ck = Checksum.Finish(Checksum.Add(sum, Buf.AsSpan(upperStart, upperLength)));
        PutU16(upperStart + at, proto == Proto.Udp && ck == 0 ? 0xffff : ck);
    }

    public int BeginIpv4(uint src, uint dst, byte proto, byte ttl, ushort id, bool dontFragment, byte tos = 0)
    {
        var start = Len;
        U8(0x45);
        U8(tos);
        U16(0);
        U16(id);
        U16(dontFragment ? 0x4000 : 0);
        U8(ttl);
        U8(proto);
        U16(0);
        U32(src);
        U32(dst);
        return start;
    }

    public void EndIpv4(int start, int upperStart)
    {
        PutU16(start + 2, Len - start);
        PutU16(start + 10, 0);
        PutU16(start + 10, Checksum.Finish(Checksum.Add(0, Buf.AsSpan(start, 20))));
        var proto = Buf[start + 9];
        var at = proto == Proto.Icmp ? 2 : ChecksumOffset(proto);
        var upperLength = Len - upperStart;
        if (at < 0 || upperLength < at + 2)
        {
            return;
        }

        if (proto == Proto.Udp)
        {
            PutU16(upperStart + 4, upperLength);
        }

        PutU16(upperStart + at, 0);
        var sum = proto == Proto.Icmp ? 0 : Checksum.PseudoV4(
            BinaryPrimitives.ReadUInt32BigEndian(Buf.AsSpan(start + 12)),
            BinaryPrimitives.ReadUInt32BigEndian(Buf.AsSpan(start + 16)),
            proto,
            upperLength);
        var ck = Checksum.Finish(Checksum.Add(sum, Buf.AsSpan(upperStart, upperLength)));
        PutU16(upperStart + at, proto == Proto.Udp && ck == 0 ? 0xffff : ck);
    }

    private static int ChecksumOffset(byte proto) => proto switch
    {
        Proto.Tcp => 16,
        Proto.Udp => 6,
        Proto.Icmpv6 => 2,
        _ => -1,
    };

    /// <summary>UDP header with length and checksum left for the IP layer's End call.</summary>
    public int Udp(int srcPort, int dstPort)
    {
        var at = Len;
        U16(srcPort);
        U16(dstPort);
        U32(0);
        return at;
    }

    /// <summary>ICMPv6 or ICMP type, code and an empty checksum; the body follows.</summary>
    public int Icmp(int type, int code)
    {
        var at = Len;
        U8(type);
        U8(code);
        U16(0);
        return at;
    }
}

internal static class Proto
{
    public const byte HopByHop = 0;
    public const byte Icmp = 1;
    public const byte Ipv6InIpv4 = 41;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte Icmpv6 = 58;
    public const byte NoNext = 59;
    public const byte DstOpts = 60;
}

internal static class EtherType
{
    public const ushort Ipv4 = 0x0800;
    public const ushort Arp = 0x0806;
    public const ushort Ipv6 = 0x86dd;
}

internal static class Checksum
{
    public static ulong PseudoV6(V6 src, V6 dst, byte proto, int length)
    {
        ulong s = 0;
        s += Words(src.Hi) + Words(src.Lo) + Words(dst.Hi) + Words(dst.Lo);
        s += (uint)length >> 16;
        s += (uint)length & 0xffff;
        s += proto;
        return s;
    }

    public static ulong PseudoV4(uint src, uint dst, byte proto, int length) =>
        (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (ulong)length;

    private static ulong Words(ulong v) => (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);

    public static ulong Add(ulong sum, ReadOnlySpan<byte> data)
    {
        var i = 0;
        for (; i + 4 <= data.Length; i += 4)
        {
            sum += BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
        }

        for (; i + 2 <= data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }

        if (i < data.Length)
        {
            sum += (ulong)data[i] << 8;
        }

        return sum;
    }

    public static ushort Finish(ulong sum)
    {
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }

        return (ushort)~sum;
    }
}

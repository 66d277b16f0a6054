namespace Survey6.CaptureGen;

internal sealed partial class TrafficGenerator
{
    private readonly V6[] _segments = new V6[4];

    /// <summary>Upper layer for probes behind extension headers: a bare SYN, opaque UDP, or an echo request.</summary>
    private byte ProbeUpper(Frame f, Endpoint from)
    {
        switch (_rng.Below(3))
        {
            case 0:
                WriteTcp(f, Ephemeral(), _rng.Pick(ScanPorts), _rng.U32(), 0, TcpFlags.Syn, 64_800, TcpOptions.SynLinux, _rng.U32(), 0, Payload.None, 0);
                return Proto.Tcp;
            case 1:
                f.Udp(OpaquePort(), OpaquePort());
                f.Opaque(_rng, _rng.Range(8, 200));
                return Proto.Udp;
            default:
                f.Icmp(128, 0);
                f.U16(_rng.U16());
                f.U16(_rng.Range(1, 10));
                EchoBody(f, from.HopLimit == 128 ? 1 : 0, _rng.Next());
                return Proto.Icmpv6;
        }
    }

    /// <summary>Hop-by-Hop header with one 8-octet body: Router Alert (value <paramref name="alert"/>) or a PadN.</summary>
    private static void HopByHop(Frame f, ref Ip6Build b, int alert)
    {
        f.OpenExtension(ref b, Proto.HopByHop);
        f.U8(0);
        if (alert >= 0)
        {
            f.U8(5);
            f.U8(2);
            f.U16(alert);
            f.U8(1);
            f.U8(0);
        }
        else
        {
            f.U8(1);
            f.U8(4);
            f.Zeros(4);
        }
    }

    /// <summary>Destination Options: PadN-only, or an RFC 3692 experimental option (0x1e) with padding.</summary>
    private void DestinationOptions(Frame f, ref Ip6Build b)
    {
        f.OpenExtension(ref b, Proto.DstOpts);
        if (_rng.Chance(0.6))
        {
            f.U8(0);
            f.U8(1);
            f.U8(4);
            f.Zeros(4);
        }
        else
        {
            f.U8(1);
            f.U8(0x1e);
            f.U8(8);
            f.Random(_rng, 8);
            f.U8(1);
            f.U8(2);
            f.Zeros(2);
        }
    }

    /// <summary>Segment Routing Header (type 4) partway along its path: the IPv6 destination is the active segment.</summary>
    private void SegmentRouting(Frame f, ref Ip6Build b, V6 finalDestination)
    {
        var n = _rng.Range(2, 4);
        _segments[0] = finalDestination;
        for (var i = 1; i < n; i++)
        {
            _segments[i] = new V6(0x2001_0db8_5200_0000UL | (uint)_rng.Below(16), (ulong)_rng.Range(1, 0x20));
        }

        var left = _rng.Chance(0.2) ? 0 : _rng.Range(1, n - 1);
        f.OpenExtension(ref b, Proto.Routing);
        f.U8(2 * n);
        f.U8(4);
        f.U8(left);
        f.U8(n - 1);
        f.U8(0);
        f.U16(0);
        for (var i = 0; i < n; i++)
        {
            f.Addr(_segments[i]);
        }

        _segments[left].Write(f.Buf.AsSpan(b.Start + 24));
        b.FinalDst = finalDestination;
    }

    /// <summary>Deprecated type 0 routing header (RFC 5095), still sent by scanners probing for it.</summary>
    private void RoutingType0(Frame f, ref Ip6Build b, V6 finalDestination)
    {
        f.OpenExtension(ref b, Proto.Routing);
        f.U8(4);
        f.U8(0);
        f.U8(2);
        f.U32(0);
        f.Addr(new V6(0x2001_0db8_5200_0000UL | (uint)_rng.Below(16), 1));
        f.Addr(finalDestination);
        b.FinalDst = finalDestination;
    }

    private void ExtensionHeaders()
    {
        var f = StartFrame();
        var outbound = _rng.Chance(0.6);
        var from = outbound ? LocalClient() : _rng.Pick(_net.Scanners);
        var to = outbound ? RemotePeer() : LocalClient();
        var b = Ip6(f, from, to, 0, FlowLabel());
        byte upperProto;
        int upper;
        switch (_rng.Below(100))
        {
            case < 30:
                DestinationOptions(f, ref b);
                break;
            case < 45:
                HopByHop(f, ref b, _rng.Chance(0.3) ? 1 : -1);
                break;
            case < 60:
                HopByHop(f, ref b, -1);
                DestinationOptions(f, ref b);
                SegmentRouting(f, ref b, to.Addr);
                break;
            case < 75:
                SegmentRouting(f, ref b, to.Addr);
                break;
            case < 80:
                RoutingType0(f, ref b, to.Addr);
                break;
            case < 88:
                HopByHop(f, ref b, -1);
                DestinationOptions(f, ref b);
                SegmentRouting(f, ref b, to.Addr);
                DestinationOptions(f, ref b);
                break;
            case < 94:
                DestinationOptions(f, ref b);
                DestinationOptions(f, ref b);
                break;
            default:
                // Options header and nothing after it (next header 59).
                DestinationOptions(f, ref b);
                f.EndIpv6(b, Proto.NoNext, f.Len);
                EmitNative(f, Kind.ExtensionHeaders);
                return;
        }

        upper = f.Len;
        upperProto = ProbeUpper(f, from);
        f.EndIpv6(b, upperProto, upper);
        EmitNative(f, Kind.ExtensionHeaders);
    }

    /// <summary>
    /// Fragmented datagrams emitted in full (so reassembly succeeds), atomic fragments (RFC 6946), and stray
    /// non-first fragments whose siblings never arrive.
    /// </summary>
    private void Fragments()
    {
        var r = _rng.Below(100);
        var outbound = _rng.Chance(0.6);
        var from = outbound ? LocalClient() : _rng.Pick(_net.Scanners);
        var to = outbound ? RemotePeer() : LocalClient();
        if (r < 60)
        {
            FragmentedDatagram(from, to);
            return;
        }

        var f = StartFrame();
        var b = Ip6(f, from, to, 0, FlowLabel());
        f.OpenExtension(ref b, Proto.Fragment);
        f.U8(0);
        if (r < 85)
        {
            f.U16(0);
            f.U32(_rng.U32());
            var upper = f.Len;
            var proto = ProbeUpper(f, from);
            f.EndIpv6(b, proto, upper);
        }
        else
        {
            var more = _rng.Chance(0.3);
            f.U16((_rng.Range(20, 400) * 8) | (more ? 1 : 0));
            f.U32(_rng.U32());
            var start = f.Len;
            var length = _rng.Range(24, 800);
            f.Random(_rng, more ? length & ~7 : length);
            f.EndIpv6(b, _rng.Chance(0.8) ? Proto.Udp : Proto.Icmpv6, start, complete: false);
        }

        EmitNative(f, Kind.Fragment);
    }

    private void FragmentedDatagram(Endpoint from, Endpoint to)
    {
        var s = _scratch;
        s.BeginBare();
        var b = Ip6(s, from, to, 0, FlowLabel());
        var r = _rng.Below(100);
        if (r < 5)
        {
            HopByHop(s, ref b, -1);
        }

        // Hop-by-Hop repeats in every fragment; Destination Options (without a routing header) travels fragmented.
        var unfragmentableEnd = s.Len;
        var lastNextHeaderAt = b.NextHeaderAt;
        if (r is >= 5 and < 15)
        {
            DestinationOptions(s, ref b);
        }

        var upper = s.Len;
        byte proto;
        if (_rng.Chance(0.6))
        {
            s.Udp(OpaquePort(), OpaquePort());
            s.Opaque(_rng, _rng.Range(300, 2800));
            proto = Proto.Udp;
        }
        else
        {
            // ping -s 2000 and friends.
            s.Icmp(128, 0);
            s.U16(_rng.U16());
            s.U16(_rng.Range(1, 10));
            s.Random(_rng, _rng.Range(1300, 3000));
            proto = Proto.Icmpv6;
        }

        s.EndIpv6(b, proto, upper);
        var total = s.Len - unfragmentableEnd;
        var tiny = _rng.Chance(0.15);
        var piece = _rng.Chance(0.6) ? 1232 : 1448;
        if (total <= piece)
        {
            piece = Math.Max(8, (total / 2) & ~7);
        }

        var id = _rng.U32();
        var offset = 0;
        while (offset < total)
        {
            var size = tiny && offset == 0 ? 8 * _rng.Range(1, 2) : piece;
            size = Math.Min(size, total - offset);
            var more = offset + size < total;
            var f = StartFrame();
            var p = f.Len;
            f.Bytes(s.Buf.AsSpan(0, unfragmentableEnd));
            f.Buf[p + lastNextHeaderAt] = Proto.Fragment;
            f.U8(s.Buf[lastNextHeaderAt]);
            f.U8(0);
            f.U16(offset | (more ? 1 : 0));
            f.U32(id);
            f.Bytes(s.Buf.AsSpan(unfragmentableEnd + offset, size));
            f.PutU16(p + 4, f.Len - p - 40);
            f.FinishEthernet(s.DstMac, s.SrcMac, EtherType.Ipv6);
            Emit(Kind.Fragment);
            offset += size;
        }
    }
}

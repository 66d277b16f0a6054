namespace Survey6.CaptureGen;

internal sealed partial class TrafficGenerator
{
    private static readonly V6[] ExtraGroups = [V6.Mdns, new(0xff02UL << 48, 0x1_0003), new(0xff02UL << 48, 0xc), new(0xff05UL << 48, 0x1_0003)];

    private readonly (Endpoint From, Endpoint To, ushort Id, ushort Seq, int Style, ulong Stamp)[] _echoes = new (Endpoint, Endpoint, ushort, ushort, int, ulong)[64];
    private int _echoHead, _echoCount;

    /// <summary>Echo requests, and replies to earlier requests in the order they were sent.</summary>
    private void Echo6()
    {
        var f = StartFrame();
        if (_echoCount > 0 && _rng.Chance(0.5))
        {
            var e = _echoes[_echoHead];
            _echoHead = (_echoHead + 1) % _echoes.Length;
            _echoCount--;
            WriteEcho(f, e.To, e.From, 129, e.Id, e.Seq, e.Style, e.Stamp);
        }
        else
        {
            var outbound = _rng.Chance(0.7);
            var from = outbound ? LocalClient() : _rng.Pick(_net.Scanners);
            var to = outbound ? RemotePeer() : _rng.Chance(0.5) ? LocalClient() : _rng.Pick(_net.LocalServers);
            var style = outbound ? (from.HopLimit == 128 ? 1 : 0) : 2;
            var id = _rng.U16();
            var seq = (ushort)_rng.Range(1, 40);
            var stamp = _rng.Next();
            WriteEcho(f, from, to, 128, id, seq, style, stamp);
            if (_echoCount == _echoes.Length)
            {
                _echoHead = (_echoHead + 1) % _echoes.Length;
                _echoCount--;
            }

            // Scanned addresses that are not in use never answer.
            if (style != 2 || _rng.Chance(0.4))
            {
                _echoes[(_echoHead + _echoCount) % _echoes.Length] = (from, to, id, seq, style, stamp);
                _echoCount++;
            }
        }

        EmitNative(f, Kind.Echo6);
    }

    private void WriteEcho(Frame f, Endpoint from, Endpoint to, int type, ushort id, ushort seq, int style, ulong stamp)
    {
        var b = Ip6(f, from, to, 0, FlowLabel(0.5));
        var upper = f.Icmp(type, 0);
        f.U16(id);
        f.U16(seq);
        EchoBody(f, style, stamp);
        f.EndIpv6(b, Proto.Icmpv6, upper);
    }

    /// <summary>Payloads of Linux ping (timestamp + 0x10..0x37), Windows ping (the alphabet) and a terse scanner probe.</summary>
    private static void EchoBody(Frame f, int style, ulong stamp)
    {
        switch (style)
        {
            case 0:
                f.U32((uint)(stamp >> 32));
                f.U32((uint)stamp);
                for (var i = 0x10; i < 0x38; i++)
                {
                    f.U8(i);
                }

                break;
            case 1:
                f.Bytes("abcdefghijklmnopqrstuvwabcdefghi"u8);
                break;
            default:
                f.U32((uint)stamp);
                break;
        }
    }

    private static void LinkLayerOption(Frame f, int type, ulong mac)
    {
        f.U8(type);
        f.U8(1);
        f.Mac(mac);
    }

    private Endpoint OnLink(Endpoint host, bool linkLocal, int hopLimit = 255) =>
        host with { Addr = linkLocal ? host.LinkLocal : host.Addr, HopLimit = (byte)hopLimit };

    private Endpoint RouterLinkLocal() => _net.Router with { Addr = V6.LinkLocal(1), HopLimit = 255 };

    private void NeighborSolicitation()
    {
        var f = StartFrame();
        var r = _rng.Below(100);
        var host = LocalClient();
        Endpoint src, dst;
        V6 target;
        var withOption = true;
        if (r < 12)
        {
            // Duplicate address detection: unspecified source, no link-layer option.
            target = _rng.Chance(0.5) ? host.Addr : host.LinkLocal;
            src = host with { Addr = V6.Unspecified, HopLimit = 255 };
            dst = host with { Addr = V6.SolicitedNode(target) };
            withOption = false;
        }
        else if (r < 30)
        {
            // Neighbour unreachability detection is unicast to the cached neighbour.
            var peer = r < 24 ? RouterLinkLocal() : OnLink(LocalClient(), true);
            src = OnLink(host, true);
            dst = peer;
            target = peer.Addr;
        }
        else if (r < 45)
        {
            // The router resolving a host it must deliver to.
            src = RouterLinkLocal();
            target = host.Addr;
            dst = host with { Addr = V6.SolicitedNode(target) };
        }
        else
        {
            var peer = _rng.Chance(0.4) ? RouterLinkLocal() : OnLink(LocalClient(), _rng.Chance(0.5));
            src = OnLink(host, _rng.Chance(0.6));
            target = peer.Addr;
            dst = peer with { Addr = V6.SolicitedNode(target) };
        }

        var b = Ip6(f, src, dst);
        var upper = f.Icmp(135, 0);
        f.U32(0);
        f.Addr(target);
        if (withOption)
        {
            LinkLayerOption(f, 1, src.Mac);
        }

        f.EndIpv6(b, Proto.Icmpv6, upper);
        EmitNative(f, Kind.NeighborSolicitation);
    }

    private void NeighborAdvertisement()
    {
        var f = StartFrame();
        var router = _rng.Chance(0.3);
        var self = router ? RouterLinkLocal() : OnLink(LocalClient(), _rng.Chance(0.5));
        var solicited = _rng.Chance(0.8);
        var dst = solicited ? (router ? OnLink(LocalClient(), true) : RouterLinkLocal()) : self with { Addr = V6.AllNodes };
        var b = Ip6(f, self, dst);
        var upper = f.Icmp(136, 0);
        f.U8((router ? 0x80 : 0) | (solicited ? 0x40 : 0) | (solicited && _rng.Chance(0.3) ? 0 : 0x20));
        f.U8(0);
        f.U16(0);
        f.Addr(self.Addr);
        LinkLayerOption(f, 2, self.Mac);
        f.EndIpv6(b, Proto.Icmpv6, upper);
        EmitNative(f, Kind.NeighborAdvertisement);
    }

    private void RouterSolicitation()
    {
        var f = StartFrame();
        var host = LocalClient();
        var early = _rng.Chance(0.1);
        var src = early ? host with { Addr = V6.Unspecified, HopLimit = 255 } : OnLink(host, true);
        var b = Ip6(f, src, host with { Addr = V6.AllRouters });
        var upper = f.Icmp(133, 0);
        f.U32(0);
        if (!early)
        {
            LinkLayerOption(f, 1, host.Mac);
        }

        f.EndIpv6(b, Proto.Icmpv6, upper);
        EmitNative(f, Kind.RouterSolicitation);
    }

    /// <summary>Router advertisement with SLLA, MTU, one or two PIOs and, on some, RDNSS and a route-information option.</summary>
    private void RouterAdvertisement()
    {
        var f = StartFrame();
        var router = RouterLinkLocal();
        var dst = _rng.Chance(0.85) ? router with { Addr = V6.AllNodes } : OnLink(LocalClient(), true);
        var b = Ip6(f, router, dst);
        var upper = f.Icmp(134, 0);
        f.U8(64);
        f.U8((_rng.Chance(0.2) ? 0x80 : 0) | (_rng.Chance(0.4) ? 0x40 : 0));
        f.U16(_rng.Chance(0.03) ? 0 : 1800);
        f.U32(0);
        f.U32(0);
        LinkLayerOption(f, 1, Network.RouterMac);
        if (_rng.Chance(0.7))
        {
            f.U8(5);
            f.U8(1);
            f.U16(0);
            f.U32(1500);
        }

        var subnet = _rng.Below(12);
        Prefix(f, _net.Prefixes[subnet]);
        if (_rng.Chance(0.4))
        {
            Prefix(f, _net.Prefixes[12 + (subnet % 4)]);
        }

        if (_rng.Chance(0.5))
        {
            var servers = _rng.Range(1, 2);
            f.U8(25);
            f.U8(1 + (2 * servers));
            f.U16(0);
            f.U32(3600);
            for (var i = 0; i < servers; i++)
            {
                f.Addr(_net.Resolvers[i].Addr);
            }
        }

        if (_rng.Chance(0.2))
        {
            f.U8(24);
            f.U8(2);
            f.U8(48);
            f.U8(0x08);
            f.U32(3600);
            f.U32(0xfd5e_6a00);
            f.U32(0);
        }

        f.EndIpv6(b, Proto.Icmpv6, upper);
        EmitNative(f, Kind.RouterAdvertisement);
    }

    private void Prefix(Frame f, ulong prefix)
    {
        f.U8(3);
        f.U8(4);
        f.U8(64);
        f.U8(0xc0);
        var shortLived = _rng.Chance(0.2);
        f.U32(shortLived ? 86_400u : 2_592_000u);
        f.U32(shortLived ? 14_400u : 604_800u);
        f.U32(0);
        f.Addr(new V6(prefix, 0));
    }

    /// <summary>MLDv2 report behind a Hop-by-Hop header with the Router Alert option, as RFC 3810 requires.</summary>
    private void MldReport()
    {
        var f = StartFrame();
        var host = LocalClient();
        var src = _rng.Chance(0.05) ? host with { Addr = V6.Unspecified } : OnLink(host, true);
        var b = Ip6(f, src, host with { Addr = V6.MldV2Routers }, 0, 0, 1);
        f.OpenExtension(ref b, Proto.HopByHop);
        f.U8(0);
        f.U8(5);
        f.U8(2);
        f.U16(0);
        f.U8(1);
        f.U8(0);
        var upper = f.Icmp(143, 0);
        f.U16(0);
        var records = _rng.Range(1, 3);
        f.U16(records);
        for (var i = 0; i < records; i++)
        {
            f.U8(_rng.Chance(0.7) ? 4 : 3);
            f.U8(0);
            f.U16(0);
            f.Addr(i == 0 ? V6.SolicitedNode(_rng.Chance(0.5) ? host.Addr : host.LinkLocal) : _rng.Pick(ExtraGroups));
        }

        f.EndIpv6(b, Proto.Icmpv6, upper);
        EmitNative(f, Kind.MldReport);
    }

    private void Redirect()
    {
        var f = StartFrame();
        var host = OnLink(LocalClient(), false);
        var b = Ip6(f, RouterLinkLocal(), host);
        var upper = f.Icmp(137, 0);
        f.U32(0);
        var better = _rng.Chance(0.5);
        f.Addr(better ? V6.LinkLocal(2) : LocalClient().Addr);
        f.Addr(better ? RemotePeer().Addr : LocalClient().Addr);
        LinkLayerOption(f, 2, better ? 0x00_1b_21_3a_10_02UL : _rng.Pick(_net.Clients).Mac);
        f.EndIpv6(b, Proto.Icmpv6, upper);
        EmitNative(f, Kind.Redirect);
    }

    /// <summary>
    /// ICMPv6 errors quoting as much of the invoking packet as fits in 1280 bytes: traceroute time-exceeded,
    /// unreachables, packet-too-big for a full-size segment, reassembly timeouts and parameter problems.
    /// </summary>
    private void Icmp6Error()
    {
        var s = _scratch;
        s.BeginBare();
        var r = _rng.Below(100);
        var inbound = r is >= 25 and < 60 && _rng.Chance(0.25);
        var victim = inbound ? _rng.Pick(_net.Scanners) : LocalClient();
        var target = inbound ? (_rng.Chance(0.5) ? LocalClient() : _rng.Pick(_net.LocalServers)) : RemotePeer();
        var reporter = inbound ? _net.Router : _rng.Pick(_net.RemoteRouters);
        int type, code;
        uint parameter = 0;
        if (r < 25)
        {
            // Traceroute probe that ran out of hops at an intermediate router.
            type = 3;
            code = 0;
            var b = s.BeginIpv6(0, FlowLabel(), 1, victim.Addr, target.Addr);
            var u = s.Udp(OpaquePort(), 33434 + _rng.Below(90));
            s.Zeros(32);
            s.EndIpv6(b, Proto.Udp, u);
        }
        else if (r < 45)
        {
            type = 1;
            code = 4;
            reporter = target;
            var b = s.BeginIpv6(0, FlowLabel(), target.Local ? victim.HopLimit : (byte)_rng.Range(40, 60), victim.Addr, target.Addr);
            var u = s.Udp(OpaquePort(), _rng.Chance(0.3) ? 33434 + _rng.Below(90) : OpaquePort());
            s.Opaque(_rng, _rng.Range(8, 64));
            s.EndIpv6(b, Proto.Udp, u);
        }
        else if (r < 60)
        {
            type = 1;
            code = inbound ? 1 : _rng.Pick(UnreachableCodes);
            var b = s.BeginIpv6(0, FlowLabel(), (byte)_rng.Range(30, 64), victim.Addr, target.Addr);
            var t = s.Len;
            WriteTcp(s, Ephemeral(), 443, _rng.U32(), 0, TcpFlags.Syn, 64_800, TcpOptions.SynLinux, _rng.U32(), 0, Payload.None, 0);
            s.EndIpv6(b, Proto.Tcp, t);
        }
        else if (r < 75)
        {
            // A full-size segment that met a smaller link: only the first 1232 bytes fit in the quote.
            type = 2;
            code = 0;
            parameter = _rng.Chance(0.6) ? 1280u : _rng.Chance(0.5) ? 1480u : 1400u;
            var b = s.BeginIpv6(0, FlowLabel(), (byte)_rng.Range(40, 62), victim.Addr, target.Addr);
            var t = s.Len;
            WriteTcp(s, Ephemeral(), 443, _rng.U32(), _rng.U32(), TcpFlags.Ack, 502, TcpOptions.Timestamps, _rng.U32(), _rng.U32(), Payload.Tls, 1428);
            s.EndIpv6(b, Proto.Tcp, t);
        }
        else if (r < 85)
        {
            // Reassembly timed out: the quote is the first fragment, fragment header included.
            type = 3;
            code = 1;
            reporter = target;
            var b = s.BeginIpv6(0, FlowLabel(), (byte)_rng.Range(40, 62), victim.Addr, target.Addr);
            s.OpenExtension(ref b, Proto.Fragment);
            s.U8(0);
            s.U16(1);
            s.U32(_rng.U32());
            var u = s.Udp(OpaquePort(), OpaquePort());
            s.Opaque(_rng, _rng.Range(400, 1000) & ~7);
            s.PutU16(u + 4, _rng.Range(1500, 3000));
            s.EndIpv6(b, Proto.Udp, u, complete: false);
        }
        else
        {
            type = 4;
            reporter = target;
            var b = s.BeginIpv6(0, FlowLabel(), (byte)_rng.Range(40, 62), victim.Addr, target.Addr);
            code = _rng.Below(3);
            var ext = s.OpenExtension(ref b, Proto.DstOpts);
            s.U8(0);
            if (code == 2)
            {
                // Option type 10xxxxxx: discard and report; the pointer names the option.
                s.U8(0x9e);
                s.U8(4);
                s.Random(_rng, 4);
                parameter = (uint)(ext + 2);
            }
            else
            {
                s.U8(1);
                s.U8(4);
                s.Zeros(4);
                parameter = code == 1 ? (uint)ext : 4u;
            }

            var u = s.Udp(OpaquePort(), OpaquePort());
            s.Opaque(_rng, _rng.Range(8, 48));
            s.EndIpv6(b, Proto.Udp, u);
            if (code == 1)
            {
                // An unassigned protocol number (200) in the chain is what was not recognised.
                s.Buf[ext] = 200;
            }
        }

        var f = StartFrame();
        var quoted = Math.Min(s.Len, 1280 - 48);
        var e = Ip6(f, reporter with { HopLimit = reporter.Local ? (byte)64 : reporter.HopLimit }, victim, 0, 0);
        var upper = f.Icmp(type, code);
        f.U32(parameter);
        f.Bytes(s.Buf.AsSpan(0, quoted));
        f.EndIpv6(e, Proto.Icmpv6, upper);
        EmitNative(f, Kind.Icmp6Error);
    }

    private static readonly int[] UnreachableCodes = [0, 1, 3, 3, 5];
}

namespace Survey6.CaptureGen;

internal sealed partial class TrafficGenerator
{
    // 6in4 (RFC 4213): a site router with a tunnel-broker /64 behind it.
    private const uint TunnelLocal = 0xcb00_710a;   // 203.0.113.10
    private const uint TunnelBroker = 0xc633_6401;  // 198.51.100.1
    private const ulong TunnelRouterMac = 0x52_54_00_f0_0d_01;
    private const ulong TunnelPrefix = 0x2001_0db8_0f00_0001UL;

    // Teredo (RFC 4380): server 192.0.2.1, relay 192.0.2.33, clients behind a NAT that maps to 203.0.113.0/24.
    private const uint TeredoServer = 0xc000_0201;
    private const uint TeredoRelay = 0xc000_0221;

    private readonly PendingQuery _tunnelQuery = new();
    private Endpoint[] _tunnelHosts = [];
    private (Endpoint Inner, uint Private, ushort PrivatePort, uint Mapped, ushort MappedPort, ulong Mac)[] _teredo = [];

    private void InitTunnels()
    {
        _tunnelHosts = new Endpoint[16];
        for (var i = 0; i < _tunnelHosts.Length; i++)
        {
            var iid = _rng.Chance(0.5) ? (ulong)(i + 2) : _rng.Next() & ~0x0200_0000_0000_0000UL;
            _tunnelHosts[i] = new Endpoint(new V6(TunnelPrefix, iid), TunnelRouterMac, true, 63, iid);
        }

        _teredo = new (Endpoint, uint, ushort, uint, ushort, ulong)[32];
        for (var i = 0; i < _teredo.Length; i++)
        {
            var mapped = 0xcb00_7100u | (uint)_rng.Range(50, 99);
            var mappedPort = _rng.U16();
            ulong flags = _rng.Chance(0.3) ? 0x8000UL : (ulong)(_rng.U16() & 0x3cff);
            var address = new V6(0x2001_0000_0000_0000UL | TeredoServer, (flags << 48) | ((ulong)(ushort)~mappedPort << 32) | (uint)~mapped);
            var host = _net.Clients[i];
            _teredo[i] = (new Endpoint(address, host.Mac, true, 128, address.Lo), 0x0a14_0000u | (uint)_rng.Range(2, 254), Ephemeral(true), mapped, mappedPort, host.Mac);
        }
    }

    /// <summary>IPv6 inside the tunnel: a stray TCP segment, an echo, a DNS query or QUIC-looking UDP.</summary>
    private void TunnelledIpv6(Frame f, Endpoint inside, Endpoint outside, bool outbound)
    {
        var from = outbound ? inside : outside;
        var to = outbound ? outside : inside;
        var b = f.BeginIpv6(0, FlowLabel(0.5), from.HopLimit, from.Addr, to.Addr);
        var upper = f.Len;
        byte proto;
        switch (_rng.Below(100))
        {
            case < 50:
                LoneTcp(f, outbound ? Ephemeral() : (ushort)443, outbound ? (ushort)443 : Ephemeral());
                proto = Proto.Tcp;
                break;
            case < 75:
                f.Icmp(outbound ? 128 : 129, 0);
                f.U16(_rng.U16());
                f.U16(_rng.Range(1, 20));
                EchoBody(f, inside.HopLimit == 128 ? 1 : 0, _rng.Next());
                proto = Proto.Icmpv6;
                break;
            case < 90:
                f.Udp(Ephemeral(), 53);
                Dns.Compose(_tunnelQuery, _rng, _net);
                Dns.WriteQuery(f, _tunnelQuery);
                proto = Proto.Udp;
                break;
            default:
                f.Udp(outbound ? OpaquePort() : 443, outbound ? 443 : OpaquePort());
                f.QuicShortHeader(_rng, _rng.Range(25, 400));
                proto = Proto.Udp;
                break;
        }

        f.EndIpv6(b, proto, upper);
    }

    private void SixInFour()
    {
        var f = StartFrame();
        var outbound = _rng.Chance(0.5);
        var ip = f.BeginIpv4(outbound ? TunnelLocal : TunnelBroker, outbound ? TunnelBroker : TunnelLocal, Proto.Ipv6InIpv4, outbound ? (byte)64 : (byte)_rng.Range(48, 56), _rng.U16(), true);
        TunnelledIpv6(f, _rng.Pick(_tunnelHosts), RemotePeer(), outbound);
        f.EndIpv4(ip, ip + 20);
        f.FinishEthernet(outbound ? Network.GatewayMac : TunnelRouterMac, outbound ? TunnelRouterMac : Network.GatewayMac, EtherType.Ipv4);
        Emit(Kind.SixInFour);
    }

    /// <summary>Teredo data, bubbles and qualification, seen on the client side of the NAT.</summary>
    private void Teredo()
    {
        var f = StartFrame();
        var c = _rng.Pick(_teredo);
        var outbound = _rng.Chance(0.55);
        var r = _rng.Below(100);
        var qualification = r >= 95;
        var server = qualification ? TeredoServer : TeredoRelay;
        var ip = f.BeginIpv4(outbound ? c.Private : server, outbound ? server : c.Private, Proto.Udp, outbound ? (byte)128 : (byte)_rng.Range(40, 60), _rng.U16(), false);
        var u = f.Udp(outbound ? c.PrivatePort : 3544, outbound ? 3544 : c.PrivatePort);
        if (!outbound && _rng.Chance(0.4))
        {
            // Origin indication: where the relay saw the packet come from, obfuscated like the address.
            f.U16(0);
            f.U16((ushort)~c.MappedPort);
            f.U32(~c.Mapped);
        }

        if (r < 15)
        {
            // Bubble: an IPv6 header with nothing after it, to open NAT state.
            var peer = RemotePeer();
            var b = f.BeginIpv6(0, 0, outbound ? (byte)128 : peer.HopLimit, outbound ? c.Inner.Addr : peer.Addr, outbound ? peer.Addr : c.Inner.Addr);
            f.EndIpv6(b, Proto.NoNext, f.Len);
        }
        else if (qualification)
        {
            var b = f.BeginIpv6(0, 0, 255, V6.LinkLocal(0x8000_ffff_ffff_fffdUL), V6.AllRouters);
            var icmp = f.Icmp(133, 0);
            f.U32(0);
            f.EndIpv6(b, Proto.Icmpv6, icmp);
        }
        else
        {
            TunnelledIpv6(f, c.Inner, RemotePeer(), outbound);
        }

        f.EndIpv4(ip, u);
        f.FinishEthernet(outbound ? Network.GatewayMac : c.Mac, outbound ? c.Mac : Network.GatewayMac, EtherType.Ipv4);
        Emit(Kind.Teredo);
    }
}

namespace Survey6.CaptureGen;

internal sealed partial class TrafficGenerator
{
    private readonly QueryRing _dns6 = new(256);
    private readonly QueryRing _dns4 = new(128);

    private void Udp6()
    {
        var f = StartFrame();
        var r = _rng.Below(100);
        if (r < 10)
        {
            Dhcpv6(f);
            EmitNative(f, Kind.Udp6);
            return;
        }

        var client = LocalClient();
        var server = RemotePeer();
        var fromClient = _rng.Chance(0.55);
        var (clientPort, serverPort) = r switch
        {
            < 35 => (_rng.Chance(0.5) ? 123 : (int)Ephemeral(), 123),
            < 80 => (OpaquePort(), 443),
            _ => (OpaquePort(), OpaquePort()),
        };
        var b = Ip6(f, fromClient ? client : server, fromClient ? server : client, 0, FlowLabel(0.5));
        var u = f.Udp(fromClient ? clientPort : serverPort, fromClient ? serverPort : clientPort);
        if (serverPort == 123)
        {
            Ntp(f, fromClient);
        }
        else if (serverPort == 443)
        {
            f.QuicShortHeader(_rng, _rng.Below(100) < 70 ? _rng.Range(25, 200) : _rng.Range(200, 1200));
        }
        else
        {
            f.Opaque(_rng, _rng.Range(8, 600));
        }

        f.EndIpv6(b, Proto.Udp, u);
        EmitNative(f, Kind.Udp6);
    }

    private void Ntp(Frame f, bool request)
    {
        f.U8(request ? 0x23 : 0x24);
        f.U8(request ? 0 : 2);
        f.U8(6);
        f.U8(0xe9);
        f.U32(request ? 0 : (uint)_rng.Range(0, 0x2000));
        f.U32(request ? 0 : (uint)_rng.Range(0, 0x2000));
        f.U32(request ? 0 : 0xc000_0201);
        for (var i = 0; i < 4; i++)
        {
            f.U32(0xeb1d_0000u + (uint)_rng.Below(0x10000));
            f.U32(_rng.U32());
        }
    }

    /// <summary>DHCPv6 Solicit from a client's link-local address, or the router's Advertise back.</summary>
    private void Dhcpv6(Frame f)
    {
        var client = LocalClient();
        var solicit = _rng.Chance(0.6);
        var router = RouterLinkLocal();
        var src = solicit ? OnLink(client, true, 1) : router with { HopLimit = 64 };
        var dst = solicit ? client with { Addr = V6.DhcpAgents } : OnLink(client, true);
        var b = Ip6(f, src, dst);
        var u = f.Udp(solicit ? 546 : 547, solicit ? 547 : 546);
        f.U8(solicit ? 1 : 2);
        f.U8(_rng.U8());
        f.U16(_rng.U16());
        DuidLl(f, 1, client.Mac);
        if (solicit)
        {
            f.U16(8);
            f.U16(2);
            f.U16(_rng.Below(300));
            IaNa(f, (uint)client.Mac, null);
            f.U16(6);
            f.U16(4);
            f.U16(23);
            f.U16(24);
        }
        else
        {
            DuidLl(f, 2, Network.RouterMac);
            IaNa(f, (uint)client.Mac, new V6(_net.Prefixes[_rng.Below(12)], _rng.Next()));
            f.U16(23);
            f.U16(16);
            f.Addr(_net.Resolvers[0].Addr);
        }

        f.EndIpv6(b, Proto.Udp, u);
    }

    private static void DuidLl(Frame f, int option, ulong mac)
    {
        f.U16(option);
        f.U16(10);
        f.U16(3);
        f.U16(1);
        f.Mac(mac);
    }

    private static void IaNa(Frame f, uint iaid, V6? address)
    {
        f.U16(3);
        f.U16(address is null ? 12 : 40);
        f.U32(iaid);
        f.U32(address is null ? 0u : 3600u);
        f.U32(address is null ? 0u : 5400u);
        if (address is { } a)
        {
            f.U16(5);
            f.U16(24);
            f.Addr(a);
            f.U32(7200);
            f.U32(7500);
        }
    }

    /// <summary>Queries to the site's resolvers, and answers to outstanding ones in the order asked.</summary>
    private void Dns6()
    {
        var f = StartFrame();
        if (_dns6.Count > 0 && _rng.Chance(0.5))
        {
            var q = _dns6.Pop();
            var b = Ip6(f, q.Server, q.Client, 0, FlowLabel(0.3));
            var u = f.Udp(53, q.ClientPort);
            Dns.WriteResponse(f, q, _rng, _net);
            f.EndIpv6(b, Proto.Udp, u);
            EmitNative(f, Kind.Dns6Response);
            return;
        }

        var p = _dns6.Push();
        Dns.Compose(p, _rng, _net);
        p.Client = LocalClient();
        p.Server = _net.Resolvers[_rng.Below(100) switch
        {
            < 60 => 0,
            < 85 => 1,
            _ => 2,
        }];
        p.ClientPort = Ephemeral(p.Client.HopLimit == 128);
        var qb = Ip6(f, p.Client, p.Server, 0, FlowLabel(0.7));
        var qu = f.Udp(p.ClientPort, 53);
        Dns.WriteQuery(f, p);
        f.EndIpv6(qb, Proto.Udp, qu);
        EmitNative(f, Kind.Dns6Query);
    }

    private void Mdns()
    {
        var f = StartFrame();
        var index = _rng.Below(_net.Clients.Length);
        var host = _net.Clients[index];
        var announce = _rng.Chance(0.5);
        var b = Ip6(f, OnLink(host, true), host with { Addr = V6.Mdns });
        var u = f.Udp(5353, 5353);
        Dns.WriteMdns(f, announce, index, host.Addr);
        f.EndIpv6(b, Proto.Udp, u);
        EmitNative(f, Kind.Mdns);
    }

    private void Dns4()
    {
        var f = StartFrame();
        if (_dns4.Count > 0 && _rng.Chance(0.5))
        {
            var q = _dns4.Pop();
            var ip = Ip4(f, q.Server4, q.Client4, Proto.Udp);
            var u = f.Udp(53, q.ClientPort);
            Dns.WriteResponse(f, q, _rng, _net);
            f.EndIpv4(ip, u);
            EmitIpv4(f, q.Server4, q.Client4, Kind.Dns4Response);
            return;
        }

        var p = _dns4.Push();
        Dns.Compose(p, _rng, _net);
        p.Client4 = _rng.Pick(_net.Clients4);
        p.Server4 = _rng.Pick(_net.Resolvers4);
        p.ClientPort = Ephemeral();
        var qi = Ip4(f, p.Client4, p.Server4, Proto.Udp);
        var qu = f.Udp(p.ClientPort, 53);
        Dns.WriteQuery(f, p);
        f.EndIpv4(qi, qu);
        EmitIpv4(f, p.Client4, p.Server4, Kind.Dns4Query);
    }
}

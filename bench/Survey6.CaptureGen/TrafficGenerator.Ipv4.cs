namespace Survey6.CaptureGen;

internal sealed partial class TrafficGenerator
{
    private int Ip4(Frame f, Endpoint4 src, Endpoint4 dst, byte proto) =>
        f.BeginIpv4(src.Addr, dst.Addr, proto, src.Ttl, _rng.U16(), _rng.Chance(0.7));

    private void EmitIpv4(Frame f, Endpoint4 src, Endpoint4 dst, Kind kind)
    {
        f.FinishEthernet(dst.Local ? dst.Mac : Network.GatewayMac, src.Local ? src.Mac : Network.GatewayMac, EtherType.Ipv4);
        Emit(kind);
    }

    private (Endpoint4 From, Endpoint4 To, bool Outbound) Pair4()
    {
        var outbound = _rng.Chance(0.55);
        var local = _rng.Pick(_net.Clients4);
        var remote = _rng.Pick(_net.Remote4);
        return outbound ? (local, remote, true) : (remote, local, false);
    }

    private void Tcp4()
    {
        var f = StartFrame();
        var (from, to, outbound) = Pair4();
        var ip = Ip4(f, from, to, Proto.Tcp);
        var upper = f.Len;
        var service = _rng.Chance(0.8) ? (ushort)443 : (ushort)80;
        LoneTcp(f, outbound ? Ephemeral() : service, outbound ? service : Ephemeral());
        f.EndIpv4(ip, upper);
        EmitIpv4(f, from, to, Kind.Tcp4);
    }

    private void Udp4()
    {
        var f = StartFrame();
        var (from, to, outbound) = Pair4();
        var ip = Ip4(f, from, to, Proto.Udp);
        var r = _rng.Below(100);
        var service = r < 40 ? 123 : r < 60 ? 443 : OpaquePort();
        var client = service == 123 ? Ephemeral() : OpaquePort();
        var u = f.Udp(outbound ? client : service, outbound ? service : client);
        if (service == 123)
        {
            Ntp(f, outbound);
        }
        else if (service == 443)
        {
            f.QuicShortHeader(_rng, _rng.Range(25, 600));
        }
        else
        {
            f.Opaque(_rng, _rng.Range(8, 400));
        }

        f.EndIpv4(ip, u);
        EmitIpv4(f, from, to, Kind.Udp4);
    }

    private void Icmp4()
    {
        var f = StartFrame();
        var (from, to, _) = Pair4();
        var ip = Ip4(f, from, to, Proto.Icmp);
        var upper = f.Len;
        if (_rng.Chance(0.8))
        {
            f.Icmp(_rng.Chance(0.5) ? 8 : 0, 0);
            f.U16(_rng.U16());
            f.U16(_rng.Range(1, 50));
            EchoBody(f, 0, _rng.Next());
        }
        else
        {
            // Port unreachable quoting the invoking IPv4 header and 8 bytes of UDP.
            f.Icmp(3, 3);
            f.U32(0);
            var inner = f.BeginIpv4(to.Addr, from.Addr, Proto.Udp, (byte)_rng.Range(40, 64), _rng.U16(), false);
            var u = f.Udp(OpaquePort(), OpaquePort());
            f.Opaque(_rng, 24);
            f.EndIpv4(inner, u);
            f.Len = u + 8;
        }

        f.EndIpv4(ip, upper);
        EmitIpv4(f, from, to, Kind.Icmp4);
    }

    private void Arp()
    {
        var f = StartFrame();
        var asker = _rng.Pick(_net.Clients4);
        var owner = _rng.Pick(_net.Clients4);
        var reply = _rng.Chance(0.4);
        var (sender, target) = reply ? (owner, asker) : (asker, owner);
        f.U16(1);
        f.U16(EtherType.Ipv4);
        f.U8(6);
        f.U8(4);
        f.U16(reply ? 2 : 1);
        f.Mac(sender.Mac);
        f.U32(sender.Addr);
        f.Mac(reply ? target.Mac : 0);
        f.U32(target.Addr);
        f.FinishEthernet(reply ? target.Mac : 0xffff_ffff_ffffUL, sender.Mac, EtherType.Arp);
        Emit(Kind.Arp);
    }
}

namespace Survey6.CaptureGen;

/// <summary>One TCP connection; its state decides the next segment so sequence numbers, ACKs and timestamps stay consistent.</summary>
internal sealed class TcpFlow
{
    public int State { get; set; }

    public Endpoint Client { get; set; }

    public Endpoint Server { get; set; }

    public ushort ClientPort { get; set; }

    public ushort ServerPort { get; set; }

    public uint ClientSeq { get; set; }

    public uint ServerSeq { get; set; }

    public uint ClientTs { get; set; }

    public uint ServerTs { get; set; }

    public uint ClientFlow { get; set; }

    public uint ServerFlow { get; set; }

    public ushort ClientWindow { get; set; }

    public ushort ServerWindow { get; set; }

    public byte Dscp { get; set; }

    public bool Timestamps { get; set; }

    public bool Windows { get; set; }

    public bool Ecn { get; set; }

    public bool Scan { get; set; }

    public bool ScanOpen { get; set; }

    public bool ClientCloses { get; set; }

    public int Exchanges { get; set; }

    public int SegmentsLeft { get; set; }

    public Payload Payload { get; set; }
}

internal enum Payload
{
    None,
    Tls,
    HttpRequest,
    HttpResponse,
    Opaque,
}

internal enum TcpOptions
{
    None,
    Timestamps,
    SynLinux,
    SynWindows,
    SynNoTimestamps,
}

internal static class TcpFlags
{
    public const int Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20, Ece = 0x40, Cwr = 0x80;
}

internal sealed partial class TrafficGenerator
{
    private static readonly ushort[] ScanPorts = [22, 23, 80, 443, 445, 3389, 8080, 8443, 5900, 25];

    private readonly TcpFlow[] _flows;

    private void StepTcpFlow()
    {
        var fl = _flows[_rng.Below(_flows.Length)];
        if (fl.State == 0)
        {
            InitFlow(fl);
        }

        const int a = TcpFlags.Ack;
        switch (fl.State)
        {
            case 1:
                Segment(fl, true, TcpFlags.Syn | (fl.Ecn ? TcpFlags.Ece | TcpFlags.Cwr : 0), fl.Windows ? TcpOptions.SynWindows : fl.Timestamps ? TcpOptions.SynLinux : TcpOptions.SynNoTimestamps, Payload.None, 0);
                fl.ClientSeq++;
                fl.State = 2;
                break;
            case 2:
                if ((fl.Scan && !fl.ScanOpen) || (!fl.Scan && _rng.Chance(0.02)))
                {
                    Segment(fl, false, TcpFlags.Rst | a, TcpOptions.None, Payload.None, 0, seqOverride: 0);
                    fl.State = 0;
                    break;
                }

                Segment(fl, false, TcpFlags.Syn | a | (fl.Ecn ? TcpFlags.Ece : 0), fl.Windows ? TcpOptions.SynWindows : fl.Timestamps ? TcpOptions.SynLinux : TcpOptions.SynNoTimestamps, Payload.None, 0);
                fl.ServerSeq++;
                fl.State = 3;
                break;
            case 3:
                if (fl.Scan)
                {
                    // Half-open scan: the prober resets instead of completing the handshake.
                    Segment(fl, true, TcpFlags.Rst, TcpOptions.None, Payload.None, 0);
                    fl.State = 0;
                    break;
                }

                Segment(fl, true, a, Opts(fl), Payload.None, 0);
                fl.State = 4;
                break;
            case 4:
                fl.ClientSeq += (uint)Segment(fl, true, TcpFlags.Psh | a, Opts(fl), fl.Payload == Payload.HttpResponse ? Payload.HttpRequest : fl.Payload, RequestSize());
                fl.State = _rng.Chance(0.5) ? 5 : 6;
                fl.SegmentsLeft = fl.Payload == Payload.HttpResponse ? 1 : _rng.Range(1, 3);
                break;
            case 5:
                Segment(fl, false, a, Opts(fl), Payload.None, 0);
                fl.State = 6;
                break;
            case 6:
                fl.SegmentsLeft--;
                fl.ServerSeq += (uint)Segment(fl, false, fl.SegmentsLeft == 0 ? TcpFlags.Psh | a : a, Opts(fl), fl.Payload, ResponseSize());
                if (fl.SegmentsLeft == 0)
                {
                    fl.State = 7;
                }

                break;
            case 7:
                Segment(fl, true, a, Opts(fl), Payload.None, 0);
                fl.Exchanges--;
                fl.State = fl.Exchanges > 0 ? 4 : 8;
                break;
            case 8:
                if (_rng.Chance(0.04))
                {
                    Segment(fl, _rng.Chance(0.5), TcpFlags.Rst | a, TcpOptions.None, Payload.None, 0);
                    fl.State = 0;
                    break;
                }

                Segment(fl, fl.ClientCloses, TcpFlags.Fin | a, Opts(fl), Payload.None, 0);
                Advance(fl, fl.ClientCloses);
                fl.State = 9;
                break;
            case 9:
                Segment(fl, !fl.ClientCloses, TcpFlags.Fin | a, Opts(fl), Payload.None, 0);
                Advance(fl, !fl.ClientCloses);
                fl.State = 10;
                break;
            default:
                Segment(fl, fl.ClientCloses, a, Opts(fl), Payload.None, 0);
                fl.State = 0;
                break;
        }
    }

    private static void Advance(TcpFlow fl, bool client)
    {
        if (client)
        {
            fl.ClientSeq++;
        }
        else
        {
            fl.ServerSeq++;
        }
    }

    private static TcpOptions Opts(TcpFlow fl) => fl.Timestamps ? TcpOptions.Timestamps : TcpOptions.None;

    private int RequestSize() => _rng.Below(100) switch
    {
        < 70 => _rng.Range(30, 120),
        < 95 => _rng.Range(120, 600),
        _ => _rng.Range(600, 1220),
    };

    private int ResponseSize() => _rng.Below(100) switch
    {
        < 60 => _rng.Range(30, 200),
        < 88 => _rng.Range(200, 800),
        _ => _rng.Range(800, 1220),
    };

    private void InitFlow(TcpFlow fl)
    {
        var r = _rng.Below(100);
        fl.Scan = r < 4;
        fl.ScanOpen = _rng.Chance(0.3);
        if (fl.Scan)
        {
            fl.Client = _rng.Pick(_net.Scanners);
            fl.Server = _rng.Chance(0.5) ? _rng.Pick(_net.LocalServers) : LocalClient();
            fl.ServerPort = _rng.Chance(0.8) ? _rng.Pick(ScanPorts) : (ushort)_rng.Range(1, 65535);
        }
        else if (r < 14)
        {
            // Inbound connections to the site's own servers.
            fl.Client = _rng.Chance(0.8) ? RemotePeer() : _rng.Pick(_net.Scanners);
            fl.Server = _rng.Pick(_net.LocalServers);
            fl.ServerPort = _rng.Chance(0.8) ? (ushort)443 : (ushort)80;
        }
        else
        {
            fl.Client = LocalClient();
            fl.Server = RemotePeer();
            fl.ServerPort = _rng.Below(100) switch
            {
                < 70 => 443,
                < 80 => 80,
                < 83 => 993,
                < 85 => 853,
                _ => OpaquePort(),
            };
        }

        fl.Windows = fl.Client.HopLimit == 128;
        fl.ClientPort = fl.Scan ? _rng.U16() : fl.ServerPort >= 49152 ? OpaquePort() : Ephemeral(fl.Windows);
        fl.Timestamps = !fl.Windows && _rng.Chance(0.9);
        fl.Ecn = !fl.Scan && _rng.Chance(0.08);
        fl.ClientSeq = _rng.U32();
        fl.ServerSeq = _rng.U32();
        fl.ClientTs = _rng.U32();
        fl.ServerTs = _rng.U32();
        fl.ClientFlow = FlowLabel(fl.Windows ? 0 : 0.9);
        fl.ServerFlow = FlowLabel(0.6);
        fl.ClientWindow = fl.Windows ? (ushort)1026 : (ushort)_rng.Range(490, 510);
        fl.ServerWindow = (ushort)_rng.Range(480, 1050);
        fl.Dscp = _rng.Below(100) switch
        {
            < 94 => 0,
            < 98 => 0x28,
            _ => 0xb8,
        };
        fl.ClientCloses = _rng.Chance(0.6);
        fl.Payload = fl.ServerPort switch
        {
            443 or 853 or 993 => Payload.Tls,
            80 => Payload.HttpResponse,
            _ => Payload.Opaque,
        };
        fl.Exchanges = fl.Payload == Payload.HttpResponse ? _rng.Range(1, 2) : _rng.Range(1, 6);
        fl.State = 1;
    }

    /// <summary>Writes one segment of <paramref name="fl"/> and returns its payload length (for sequence accounting).</summary>
    private int Segment(TcpFlow fl, bool fromClient, int flags, TcpOptions options, Payload payload, int size, long seqOverride = -1)
    {
        var f = StartFrame();
        var from = fromClient ? fl.Client : fl.Server;
        var to = fromClient ? fl.Server : fl.Client;
        if (fromClient)
        {
            fl.ClientTs += (uint)_rng.Below(3);
        }
        else
        {
            fl.ServerTs += (uint)_rng.Below(3);
        }

        var ecn = fl.Ecn && payload != Payload.None ? (_rng.Chance(0.01) ? 3 : 2) : 0;
        var b = Ip6(f, from, to, (byte)(fl.Dscp | ecn), fromClient ? fl.ClientFlow : fl.ServerFlow);
        var upper = f.Len;
        var seq = seqOverride >= 0 ? (uint)seqOverride : fromClient ? fl.ClientSeq : fl.ServerSeq;
        var ack = (flags & TcpFlags.Ack) != 0 ? (fromClient ? fl.ServerSeq : fl.ClientSeq) : 0;
        var n = WriteTcp(
            f,
            fromClient ? fl.ClientPort : fl.ServerPort,
            fromClient ? fl.ServerPort : fl.ClientPort,
            seq,
            ack,
            flags,
            fromClient ? fl.ClientWindow : fl.ServerWindow,
            options,
            fromClient ? fl.ClientTs : fl.ServerTs,
            flags == (TcpFlags.Syn | (fl.Ecn ? TcpFlags.Ece | TcpFlags.Cwr : 0)) ? 0 : fromClient ? fl.ServerTs : fl.ClientTs,
            payload,
            size);
        f.EndIpv6(b, Proto.Tcp, upper);
        EmitNative(f, Kind.Tcp6);
        return n;
    }

    /// <summary>TCP header, options in the orders Linux and Windows send them, then the payload; returns the payload length.</summary>
    private int WriteTcp(Frame f, int srcPort, int dstPort, uint seq, uint ack, int flags, ushort window, TcpOptions options, uint tsval, uint tsecr, Payload payload, int size)
    {
        var start = f.Len;
        f.U16(srcPort);
        f.U16(dstPort);
        f.U32(seq);
        f.U32(ack);
        f.U16(0);
        f.U16(window);
        f.U32(0);
        switch (options)
        {
            case TcpOptions.Timestamps:
                f.U8(1);
                f.U8(1);
                Timestamp(f, tsval, tsecr);
                break;
            case TcpOptions.SynLinux:
                Mss(f, 1440);
                f.U8(4);
                f.U8(2);
                Timestamp(f, tsval, tsecr);
                f.U8(1);
                WindowScale(f, 7);
                break;
            case TcpOptions.SynNoTimestamps:
                Mss(f, 1220);
                f.U8(1);
                f.U8(1);
                f.U8(4);
                f.U8(2);
                f.U8(1);
                WindowScale(f, 7);
                break;
            case TcpOptions.SynWindows:
                Mss(f, 1440);
                f.U8(1);
                WindowScale(f, 8);
                f.U8(1);
                f.U8(1);
                f.U8(4);
                f.U8(2);
                break;
        }

        f.PutU16(start + 12, (((f.Len - start) / 4) << 12) | flags);
        var body = f.Len;
        switch (payload)
        {
            case Payload.Tls:
                // A whole TLS 1.2/1.3 application-data record, so the TLS dissector sees a clean record boundary.
                size = Math.Max(size, 22);
                f.U8(0x17);
                f.U16(0x0303);
                f.U16(size - 5);
                f.Random(_rng, size - 5);
                break;
            case Payload.HttpRequest:
                f.Bytes("GET /item/"u8);
                f.Decimal(_rng.Below(100_000));
                f.Bytes(" HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"u8);
                break;
            case Payload.HttpResponse:
                f.Bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "u8);
                f.Decimal(size);
                f.Bytes("\r\n\r\n"u8);
                for (var i = 0; i < size; i++)
                {
                    f.U8('a' + (i % 26));
                }

                break;
            case Payload.Opaque:
                f.Opaque(_rng, size);
                break;
        }

        return f.Len - body;
    }

    private static void Mss(Frame f, int mss)
    {
        f.U8(2);
        f.U8(4);
        f.U16(mss);
    }

    private static void WindowScale(Frame f, int shift)
    {
        f.U8(3);
        f.U8(3);
        f.U8(shift);
    }

    private static void Timestamp(Frame f, uint tsval, uint tsecr)
    {
        f.U8(8);
        f.U8(10);
        f.U32(tsval);
        f.U32(tsecr);
    }

    /// <summary>A segment outside any tracked connection (tunnels, scans, extension-header probes).</summary>
    private void LoneTcp(Frame f, ushort srcPort, ushort dstPort)
    {
        var (flags, payload) = _rng.Below(100) switch
        {
            < 25 => (TcpFlags.Syn, Payload.None),
            < 55 => (TcpFlags.Ack, Payload.None),
            < 85 => (TcpFlags.Psh | TcpFlags.Ack, (srcPort, dstPort) switch
            {
                (443, _) or (_, 443) => Payload.Tls,
                (_, 80) => Payload.HttpRequest,
                (80, _) => Payload.HttpResponse,
                _ => Payload.Opaque,
            }),
            < 93 => (TcpFlags.Fin | TcpFlags.Ack, Payload.None),
            _ => (TcpFlags.Rst, Payload.None),
        };
        var options = flags == TcpFlags.Syn ? TcpOptions.SynLinux : _rng.Chance(0.7) ? TcpOptions.Timestamps : TcpOptions.None;
        WriteTcp(f, srcPort, dstPort, _rng.U32(), flags == TcpFlags.Syn || flags == TcpFlags.Rst ? 0 : _rng.U32(), flags, (ushort)_rng.Range(200, 1024), options, _rng.U32(), flags == TcpFlags.Syn ? 0 : _rng.U32(), payload, RequestSize());
    }
}

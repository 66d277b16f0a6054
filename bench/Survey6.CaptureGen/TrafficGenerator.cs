namespace Survey6.CaptureGen;

/// <summary>What one written record carries; the summary counts records per kind.</summary>
internal enum Kind
{
    Tcp6,
    Udp6,
    Dns6Query,
    Dns6Response,
    Mdns,
    Echo6,
    NeighborSolicitation,
    NeighborAdvertisement,
    RouterSolicitation,
    RouterAdvertisement,
    MldReport,
    Redirect,
    Icmp6Error,
    ExtensionHeaders,
    Fragment,
    SixInFour,
    Teredo,
    Tcp4,
    Udp4,
    Dns4Query,
    Dns4Response,
    Icmp4,
    Arp,
}

/// <summary>
/// Emits a deterministic packet stream: each step draws a traffic unit (one or a few records) from a fixed
/// mix, builds it into a reused frame, and hands it to the writer. Nothing here allocates per packet.
/// </summary>
internal sealed partial class TrafficGenerator
{
    public const double TruncatedShare = 0.01;
    public const double TaggedShare = 0.06;

    private static readonly int[] TruncationCuts = [14, 34, 54, 58, 62, 64, 68, 74, 78, 96, 128];
    private static readonly ushort[] VlanIds = [10, 20, 30, 100, 200, 300, 1001, 4000];
    private static readonly int[] Priorities = [3, 5, 6];

    private readonly Rng _rng;
    private readonly Network _net;
    private readonly PcapFileWriter _writer;
    private readonly Frame _frame;
    private readonly Frame _scratch;
    private readonly Unit[] _unitTable;
    private long _micros;

    public TrafficGenerator(Rng rng, PcapFileWriter writer, byte[] frameBuffer, byte[] scratchBuffer)
    {
        _rng = rng;
        _writer = writer;
        _frame = new Frame(frameBuffer);
        _scratch = new Frame(scratchBuffer);
        _net = new Network(rng);
        _unitTable = BuildUnitTable();
        _flows = new TcpFlow[2048];
        for (var i = 0; i < _flows.Length; i++)
        {
            _flows[i] = new TcpFlow();
        }

        InitTunnels();
    }

    public long[] Counts { get; } = new long[Enum.GetValues<Kind>().Length];

    public long Tagged { get; private set; }

    public long DoubleTagged { get; private set; }

    public long Truncated { get; private set; }

    private enum Unit : byte
    {
        Tcp6,
        Udp6,
        Dns6,
        Mdns,
        Echo6,
        Ns,
        Na,
        Rs,
        Ra,
        Mld,
        Redirect,
        Icmp6Error,
        ExtHeaders,
        Fragments,
        SixInFour,
        Teredo,
        Tcp4,
        Udp4,
        Dns4,
        Icmp4,
        Arp,
    }

    /// <summary>Units per 10,000 draws. Fragment units yield two or three records, so shares of records differ slightly.</summary>
    private static readonly (Unit Unit, int Weight)[] Mix =
    [
        (Unit.Tcp6, 4820), (Unit.Udp6, 650), (Unit.Dns6, 1300), (Unit.Mdns, 40), (Unit.Echo6, 380),
        (Unit.Ns, 200), (Unit.Na, 180), (Unit.Rs, 40), (Unit.Ra, 60), (Unit.Mld, 50), (Unit.Redirect, 10),
        (Unit.Icmp6Error, 300), (Unit.ExtHeaders, 250), (Unit.Fragments, 180), (Unit.SixInFour, 300), (Unit.Teredo, 200),
        (Unit.Tcp4, 520), (Unit.Udp4, 130), (Unit.Dns4, 220), (Unit.Icmp4, 80), (Unit.Arp, 90),
    ];

    private static Unit[] BuildUnitTable()
    {
        var table = new List<Unit>(10_000);
        foreach (var (unit, weight) in Mix)
        {
            table.AddRange(Enumerable.Repeat(unit, weight));
        }

        if (table.Count != 10_000)
        {
            throw new InvalidOperationException($"traffic mix sums to {table.Count}, not 10000");
        }

        return [.. table];
    }

    public void Run()
    {
        while (!_writer.Full)
        {
            switch (_unitTable[_rng.Below(10_000)])
            {
                case Unit.Tcp6: StepTcpFlow(); break;
                case Unit.Udp6: Udp6(); break;
                case Unit.Dns6: Dns6(); break;
                case Unit.Mdns: Mdns(); break;
                case Unit.Echo6: Echo6(); break;
                case Unit.Ns: NeighborSolicitation(); break;
                case Unit.Na: NeighborAdvertisement(); break;
                case Unit.Rs: RouterSolicitation(); break;
                case Unit.Ra: RouterAdvertisement(); break;
                case Unit.Mld: MldReport(); break;
                case Unit.Redirect: Redirect(); break;
                case Unit.Icmp6Error: Icmp6Error(); break;
                case Unit.ExtHeaders: ExtensionHeaders(); break;
                case Unit.Fragments: Fragments(); break;
                case Unit.SixInFour: SixInFour(); break;
                case Unit.Teredo: Teredo(); break;
                case Unit.Tcp4: Tcp4(); break;
                case Unit.Udp4: Udp4(); break;
                case Unit.Dns4: Dns4(); break;
                case Unit.Icmp4: Icmp4(); break;
                case Unit.Arp: Arp(); break;
            }
        }
    }

    /// <summary>Starts a frame in the main buffer, tagging a few percent with 802.1Q (and some of those with 802.1ad outside).</summary>
    private Frame StartFrame()
    {
        var tags = 0;
        ushort outer = 0, inner = 0;
        if (_rng.Chance(TaggedShare))
        {
            tags = _rng.Chance(0.1) ? 2 : 1;
            var pcp = _rng.Chance(0.85) ? 0 : _rng.Pick(Priorities);
            inner = (ushort)((pcp << 13) | _rng.Pick(VlanIds));
            outer = (ushort)(100 + _rng.Below(4));
        }

        _frame.BeginEthernet(tags, outer, inner);
        return _frame;
    }

    /// <summary>Pads short frames as a receiving NIC would, advances the clock, maybe truncates, and writes.</summary>
    private void Emit(Kind kind)
    {
        var f = _frame;
        if (f.Len < 60)
        {
            f.Buf.AsSpan(f.Len, 60 - f.Len).Clear();
            f.Len = 60;
        }

        // Bursty spacing: most gaps are a few microseconds, some are hundreds.
        _micros += 1 + (_rng.Chance(0.6) ? _rng.Below(24) : _rng.Below(400));
        var capLen = f.Len;
        if (_rng.Chance(TruncatedShare))
        {
            var cut = _rng.Chance(0.7) ? _rng.Pick(TruncationCuts) : 0;
            capLen = cut > 0 && cut < f.Len ? cut : _rng.Range(14, f.Len - 1);
        }

        if (_writer.Write(f.Buf.AsSpan(0, f.Len), capLen, _micros))
        {
            Counts[(int)kind]++;
            Tagged += f.Tags > 0 ? 1 : 0;
            DoubleTagged += f.Tags == 2 ? 1 : 0;
            Truncated += capLen < f.Len ? 1 : 0;
        }
    }

    /// <summary>IPv6 header between two endpoints; records which MACs a native frame would carry.</summary>
    private static Ip6Build Ip6(Frame f, Endpoint src, Endpoint dst, byte trafficClass = 0, uint flowLabel = 0, int hopLimit = -1)
    {
        f.SrcMac = src.Local ? src.Mac : Network.GatewayMac;
        f.DstMac = dst.Addr.IsMulticast ? dst.Addr.MulticastMac : dst.Local ? dst.Mac : Network.GatewayMac;
        return f.BeginIpv6(trafficClass, flowLabel, hopLimit >= 0 ? (byte)hopLimit : src.HopLimit, src.Addr, dst.Addr);
    }

    private void EmitNative(Frame f, Kind kind)
    {
        f.FinishEthernet(f.DstMac, f.SrcMac, EtherType.Ipv6);
        Emit(kind);
    }

    private Endpoint LocalClient() => _rng.Pick(_net.Clients);

    private Endpoint RemotePeer() => _rng.Pick(_net.Remote);

    private ushort Ephemeral(bool windows = false) => (ushort)(windows ? _rng.Range(49152, 65535) : _rng.Range(32768, 60999));

    /// <summary>
    /// Port for payloads that belong to no protocol. Drawn from the dynamic range, where few dissectors claim ports,
    /// so random bytes are not parsed as some registered protocol and flagged malformed.
    /// </summary>
    private ushort OpaquePort()
    {
        int port;
        do
        {
            port = _rng.Range(49152, 65535);
        }
        while (Array.BinarySearch(ClaimedDynamicPorts, port) >= 0);

        return (ushort)port;
    }

    // The few dynamic-range ports Wireshark 4.0 binds to a dissector (tshark -G decodes).
    private static readonly int[] ClaimedDynamicPorts =
    [
        49999, 54328, 56000, 56001, 56500, 56501, 57000, 57001, 57032, 57033, 57500, 57501, 57532, 57533,
        59000, 59001, 59032, 59033, 59500, 59501, 59532, 59533, 60001,
    ];

    private uint FlowLabel(double share = 0.8) => _rng.Chance(share) ? _rng.U32() & 0xf_ffff : 0;
}

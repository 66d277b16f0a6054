using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

/// <summary>Stable lower-case names used in JSON, TSV and Parquet outputs.</summary>
public static class ProtocolNames
{
    public static string NextHeader(byte value) => value switch
    {
        0 => "hop-by-hop(0)",
        1 => "icmp(1)",
        2 => "igmp(2)",
        4 => "ipv4(4)",
        6 => "tcp(6)",
        17 => "udp(17)",
        41 => "ipv6(41)",
        43 => "routing(43)",
        44 => "fragment(44)",
        47 => "gre(47)",
        50 => "esp(50)",
        51 => "ah(51)",
        58 => "icmpv6(58)",
        59 => "no-next-header(59)",
        60 => "destination-options(60)",
        62 => "mobility-old(62)",
        89 => "ospf(89)",
        103 => "pim(103)",
        112 => "vrrp(112)",
        132 => "sctp(132)",
        135 => "mobility(135)",
        _ => value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Icmpv6Type(byte value) => value switch
    {
        Icmpv6MessageType.DestinationUnreachable => "destination-unreachable(1)",
        Icmpv6MessageType.PacketTooBig => "packet-too-big(2)",
        Icmpv6MessageType.TimeExceeded => "time-exceeded(3)",
        Icmpv6MessageType.ParameterProblem => "parameter-problem(4)",
        Icmpv6MessageType.EchoRequest => "echo-request(128)",
        Icmpv6MessageType.EchoReply => "echo-reply(129)",
        Icmpv6MessageType.MulticastListenerQuery => "mld-query(130)",
        Icmpv6MessageType.MulticastListenerReport => "mld-report(131)",
        Icmpv6MessageType.MulticastListenerDone => "mld-done(132)",
        Icmpv6MessageType.RouterSolicitation => "router-solicitation(133)",
        Icmpv6MessageType.RouterAdvertisement => "router-advertisement(134)",
        Icmpv6MessageType.NeighborSolicitation => "neighbor-solicitation(135)",
        Icmpv6MessageType.NeighborAdvertisement => "neighbor-advertisement(136)",
        Icmpv6MessageType.Redirect => "redirect(137)",
        Icmpv6MessageType.RouterRenumbering => "router-renumbering(138)",
        Icmpv6MessageType.Version2MulticastListenerReport => "mldv2-report(143)",
        _ => value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Encapsulation(Dissection.Encapsulation value) => value switch
    {
        Dissection.Encapsulation.None => "none",
        Dissection.Encapsulation.Native => "native",
        Dissection.Encapsulation.SixInFour => "6in4",
        Dissection.Encapsulation.Teredo => "teredo",
        Dissection.Encapsulation.Ipv6InIpv6 => "ipv6-in-ipv6",
        Dissection.Encapsulation.Gre => "gre",
        Dissection.Encapsulation.L2tp => "l2tp",
        _ => "other",
    };

    public static string Layer(Dissection.Layer value) => value switch
    {
        Dissection.Layer.Ethernet => "eth",
        Dissection.Layer.Vlan => "vlan",
        Dissection.Layer.LinuxSll => "sll",
        Dissection.Layer.LinuxSll2 => "sll2",
        Dissection.Layer.Loopback => "null",
        Dissection.Layer.Ppp => "ppp",
        Dissection.Layer.Pppoe => "pppoes",
        Dissection.Layer.RawIp => "raw",
        Dissection.Layer.Ipv4 => "ip",
        Dissection.Layer.Ipv6 => "ipv6",
        Dissection.Layer.Gre => "gre",
        Dissection.Layer.Erspan => "erspan",
        Dissection.Layer.Teredo => "teredo",
        Dissection.Layer.L2tp => "l2tp",
        Dissection.Layer.Udp => "udp",
        Dissection.Layer.Tcp => "tcp",
        Dissection.Layer.Icmpv6 => "icmpv6",
        Dissection.Layer.Dns => "dns",
        Dissection.Layer.QuotedIpv6 => "quoted-ipv6",
        _ => "?",
    };

    public static string DnsTransport(DnsTransportKind value) => value switch
    {
        DnsTransportKind.Dns => "dns",
        DnsTransportKind.Mdns => "mdns",
        DnsTransportKind.Llmnr => "llmnr",
        _ => "none",
    };

    public static string LinkType(Capture.LinkType value) => value switch
    {
        Capture.LinkType.Null => "null",
        Capture.LinkType.Ethernet => "ethernet",
        Capture.LinkType.Ppp => "ppp",
        Capture.LinkType.Raw => "raw",
        Capture.LinkType.Loop => "loop",
        Capture.LinkType.LinuxSll => "linux-sll",
        Capture.LinkType.Ipv4 => "ipv4",
        Capture.LinkType.Ipv6 => "ipv6",
        Capture.LinkType.LinuxSll2 => "linux-sll2",
        _ => "unknown",
    };

    /// <summary>Kebab-case name of a single anomaly flag.</summary>
    public static string Anomaly(Dissection.Anomaly value) => value switch
    {
        Dissection.Anomaly.TruncatedLinkHeader => "truncated-link-header",
        Dissection.Anomaly.TruncatedIpv4Header => "truncated-ipv4-header",
        Dissection.Anomaly.TruncatedIpv6Header => "truncated-ipv6-header",
        Dissection.Anomaly.TruncatedExtensionHeader => "truncated-extension-header",
        Dissection.Anomaly.TruncatedTransportHeader => "truncated-transport-header",
        Dissection.Anomaly.TruncatedIcmpv6 => "truncated-icmpv6",
        Dissection.Anomaly.TruncatedDns => "truncated-dns",
        Dissection.Anomaly.BadIpVersion => "bad-ip-version",
        Dissection.Anomaly.BadIpv4HeaderLength => "bad-ipv4-header-length",
        Dissection.Anomaly.BadExtensionHeaderLength => "bad-extension-header-length",
        Dissection.Anomaly.ExtensionChainTooLong => "extension-chain-too-long",
        Dissection.Anomaly.EncapsulationTooDeep => "encapsulation-too-deep",
        Dissection.Anomaly.PayloadLengthMismatch => "payload-length-mismatch",
        Dissection.Anomaly.MalformedDns => "malformed-dns",
        Dissection.Anomaly.MalformedTunnel => "malformed-tunnel",
        Dissection.Anomaly.UnsupportedLinkType => "unsupported-link-type",
        Dissection.Anomaly.TooManyVlanTags => "too-many-vlan-tags",
        Dissection.Anomaly.DeprecatedRoutingHeader => "deprecated-routing-header",
        Dissection.Anomaly.BadTcpHeaderLength => "bad-tcp-header-length",
        _ => "anomaly-" + ((uint)value).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Longest text <see cref="WriteAnomalies"/> can write: every flag name, comma-separated.</summary>
    public const int MaxAnomaliesLength = 32 * 32;

    /// <summary>Writes the names of every set flag, lowest bit first, comma-separated; returns the length.</summary>
    public static int WriteAnomalies(Dissection.Anomaly anomalies, Span<char> destination)
    {
        int n = 0;
        uint bits = (uint)anomalies;
        while (bits != 0)
        {
            uint bit = bits & (uint)-(int)bits;
            bits &= bits - 1;
            if (n > 0)
            {
                destination[n++] = ',';
            }

            var name = Anomaly((Dissection.Anomaly)bit);
            name.CopyTo(destination[n..]);
            n += name.Length;
        }

        return n;
    }
}

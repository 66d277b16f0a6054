using Survey6.Aggregator.Connections;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Tests.Connections;

/// <summary>
/// conn_state and history of crafted exchanges, against the rules Zeek documents for conn.log
/// (base/protocols/conn/main.zeek): upper case for the originator, lower for the responder; a, d, i, q once per
/// direction; f, h, r, s again only with a new sequence number; c, g, t, w at the 1st, 10th, 100th occurrence.
/// </summary>
public class ConnStateTests
{
    [Theory]
    [InlineData("S0", "S", "C:S")]
    [InlineData("REJ", "Sr", "C:S S:RA")]
    [InlineData("S1", "ShA", "C:S S:SA C:A")]
    [InlineData("SF", "ShADadFf", "C:S S:SA C:A C:PA/100 S:A S:PA/200 C:FA S:FA C:A")]
    [InlineData("S2", "ShAF", "C:S S:SA C:A C:FA")]
    [InlineData("S3", "ShAf", "C:S S:SA C:A S:FA")]
    [InlineData("RSTO", "ShAR", "C:S S:SA C:A C:R")]
    [InlineData("RSTR", "ShAr", "C:S S:SA C:A S:R")]
    [InlineData("RSTOS0", "SR", "C:S C:R")]
    [InlineData("RSTRH", "Ahr", "C:A S:SA S:R")]
    [InlineData("SH", "SF", "C:S C:F")]
    [InlineData("SHR", "Ahf", "C:A S:SA S:FA")]
    [InlineData("OTH", "Dd", "C:PA/10 S:PA/10")]
    public void Each_state_follows_zeeks_rules(string state, string history, string exchange)
    {
        var c = Run(exchange).Single();
        Assert.Equal(state, c.ConnState);
        Assert.Equal(history, c.History);
        Assert.Equal(TcpScript.Client.ToString(), c.OrigH);
        Assert.Equal(50000, c.OrigP);
        Assert.Equal("tcp", c.Proto);
    }

    [Fact]
    public void A_normal_exchange_counts_packets_bytes_by_sequence_numbers_and_a_duration_without_the_last_ack()
    {
        var script = Run("C:S S:SA C:A C:PA/100 S:A S:PA/200 C:FA S:FA C:A");
        var c = script.Single();
        Assert.Equal(5, c.OrigPkts);
        Assert.Equal(4, c.RespPkts);
        Assert.Equal(100, c.OrigBytes);
        Assert.Equal(200, c.RespBytes);
        Assert.Equal((5 * 60) + 100, c.OrigIpBytes);
        Assert.Equal((4 * 60) + 200, c.RespIpBytes);
        Assert.Equal(0, c.MissedBytes);

        // Nine packets 1 ms apart; Zeek's duration stops at the second FIN.
        Assert.Equal(7_000_000, c.DurationNs);
        Assert.StartsWith("C", c.Uid, StringComparison.Ordinal);
        Assert.Equal(18, c.Uid.Length);
    }

    /// <summary>
    /// A uid is a hash of the probe, the key and the first packet's time, and of nothing else: not of the release that
    /// made it, since researchers join datasets made by different versions on it. These values were computed once.
    /// </summary>
    [Theory]
    [InlineData("probe-a", 0L, "C0Xcdxlpf5uI8JGsaf")]
    [InlineData("sonde-zürich-01", 1_735_689_600_123_456_789L, "C1PStBiVtGK8WGocpO")]
    [InlineData("p", long.MaxValue, "C0D8ACCNT9aybziPgX")]
    [InlineData("p", long.MinValue, "C0Sc0WTcXdkImkqus6")]
    public void A_uid_is_the_same_in_every_release(string probe, long firstTimestampNs, string uid)
    {
        var key = new ConnectionKey(Ipv6Address.Parse("2001:db8::1"), 50000, Ipv6Address.Parse("2001:db8::53"), 53, ConnectionKey.Udp, Encapsulation.Native, OneWay: false);
        Assert.Equal(uid, Connection.MakeUid(probe, key, firstTimestampNs));
    }

    [Fact]
    public void A_single_packet_has_no_duration_and_no_byte_counts_as_in_zeek()
    {
        var c = Run("C:S").Single();
        Assert.Null(c.DurationNs);
        Assert.Null(c.OrigBytes);
        Assert.Null(c.RespBytes);
        Assert.Equal(1, c.OrigPkts);
    }

    [Fact]
    public void A_retransmission_is_t_and_repeats_at_ten()
    {
        var script = new TcpScript().C("S").S("SA").C("A").C("PA", 100);
        for (int i = 0; i < 10; i++)
        {
            script.CAgain(100, 100);
        }

        var c = script.Single();
        Assert.Equal("ShADTT", c.History);
        Assert.Equal(100, c.OrigBytes);
    }

    [Fact]
    public void A_zero_window_is_w_once_below_ten()
    {
        var c = new TcpScript().C("S").S("SA").C("A").C("PA", 100).S("A", window: 0).S("A", window: 0).Single();
        Assert.Equal("ShADaw", c.History);
    }

    [Fact]
    public void Data_the_peer_acknowledges_but_the_monitor_never_saw_is_a_gap_and_missed_bytes()
    {
        var c = new TcpScript().C("S").S("SA").C("A").C("PA", 100).Lose(300).C("PA", 50).S("A").Single();
        Assert.Equal(300, c.MissedBytes);
        Assert.Equal("ShADaG", c.History);
        Assert.Equal(450, c.OrigBytes);
    }

    [Fact]
    public void A_syn_ack_seen_before_its_syn_flips_the_roles_as_zeek_does()
    {
        // The server's SYN-ACK is stamped first; the client's SYN (the one it answers) follows.
        var server = new TcpScript();
        server.C("S");
        var syn = server.Packets[0];
        server.S("SA").C("A");
        var reordered = new List<ConnectionPacket> { server.Packets[1], syn with { TimestampNs = server.Packets[1].TimestampNs + 1 }, server.Packets[2] };
        var tracker = new ConnectionTracker("probe-1", "capture-1", reordered[0].TimestampNs);
        foreach (var p in reordered)
        {
            tracker.Add(p);
        }

        var c = Assert.Single(new ConnectionStitcher().Stitch(tracker.Drain()));
        Assert.Equal("Hs^A", c.History);
        Assert.Equal(TcpScript.Client.ToString(), c.OrigH);
        Assert.Equal("S1", c.ConnState);
    }

    [Fact]
    public void An_unanswered_syn_retried_after_the_attempt_delay_is_a_new_connection()
    {
        var script = new TcpScript().C("S");
        script.Wait(TimeSpan.FromSeconds(3));
        var retry = script.Packets[0] with { TimestampNs = script.Packets[0].TimestampNs + 3_000_000_000 };
        var late = script.Packets[0] with { TimestampNs = script.Packets[0].TimestampNs + 10_000_000_000 };
        script.Packets.Add(retry);
        script.Packets.Add(late);
        var connections = script.Track();
        Assert.Equal(2, connections.Count);
        Assert.Equal(2, connections[0].OrigPkts);
        Assert.Equal("S", connections[0].History);
        Assert.Equal("S0", connections[1].ConnState);
    }

    [Fact]
    public void A_new_syn_after_a_close_starts_a_new_connection()
    {
        var script = new TcpScript().C("S").S("SA").C("A").C("FA").S("FA").C("A").C("S").S("SA");
        var connections = script.Track();
        Assert.Equal(2, connections.Count);
        Assert.Equal("SF", connections[0].ConnState);
        Assert.Equal("Sh", connections[1].History);
    }

    [Fact]
    public void Idle_timeouts_split_connections_by_protocol()
    {
        var options = new ConnectionOptions();
        var script = new TcpScript().C("S").S("SA").C("A");
        script.Wait(TimeSpan.FromMinutes(4)).C("PA", 10);
        Assert.Single(script.Track(options));
        script.Wait(TimeSpan.FromMinutes(6)).C("PA", 10);
        Assert.Equal(2, script.Track(options).Count);

        options.TcpIdleTimeout = TimeSpan.FromMinutes(7);
        Assert.Single(script.Track(options));
    }

    [Fact]
    public void Udp_is_sf_with_a_reply_and_s0_without_and_dns_is_its_service()
    {
        var a = Ipv6Address.Parse("2001:db8::a");
        var b = Ipv6Address.Parse("2001:db8::b");
        long t = 1_000_000_000;
        var tracker = new ConnectionTracker("p", "s", t);
        tracker.Add(Udp(t, a, 40000, b, 53, 30, dns: true));
        tracker.Add(Udp(t + 1000, b, 53, a, 40000, 90, dns: true));
        tracker.Add(Udp(t + 2000, a, 40001, b, 9999, 5, dns: false));
        var connections = new ConnectionStitcher().Stitch(tracker.Drain());
        var dns = connections.Single(c => c.RespP == 53);
        Assert.Equal(("SF", "Dd", "dns", 30L, 90L), (dns.ConnState, dns.History, dns.Service, dns.OrigBytes!.Value, dns.RespBytes!.Value));
        Assert.Equal((1, 1), ((int)dns.OrigPkts, (int)dns.RespPkts));
        var lone = connections.Single(c => c.RespP == 9999);
        Assert.Equal(("S0", "D"), (lone.ConnState, lone.History));
        Assert.Null(lone.Service);
    }

    [Fact]
    public void Icmpv6_echo_request_and_reply_are_one_connection_keyed_by_type_and_counterpart()
    {
        var a = Ipv6Address.Parse("2001:db8::a");
        var b = Ipv6Address.Parse("2001:db8::b");
        var tracker = new ConnectionTracker("p", "s", 0);
        tracker.Add(Icmp(10, a, b, 128, 0, 56));
        tracker.Add(Icmp(20, b, a, 129, 0, 56));
        tracker.Add(Icmp(30, b, a, 1, 4, 100));
        var connections = new ConnectionStitcher().Stitch(tracker.Drain());
        Assert.Equal(2, connections.Count);
        var echo = connections[0];
        Assert.Equal(("icmp", (ushort)128, (ushort)129, 1L, 1L, "OTH"), (echo.Proto, echo.OrigP, echo.RespP, echo.OrigPkts, echo.RespPkts, echo.ConnState));
        Assert.Equal(56, echo.OrigBytes);
        Assert.Null(echo.History);
        var error = connections[1];
        Assert.Equal((b.ToString(), (ushort)1, (ushort)4), (error.OrigH, error.OrigP, error.RespP));
    }

    [Fact]
    public void Address_classes_and_encapsulation_are_reported_for_both_ends()
    {
        var c = Run("C:S S:SA").Single();
        Assert.Equal("native", c.Encapsulation);
        Assert.Equal("probe-1", c.ProbeId);
        Assert.Equal(Ipv6AddressClassifier.TypeName(Ipv6AddressClassifier.Classify(TcpScript.Client).Type), c.OrigType);
        Assert.NotNull(c.OrigIid);
        Assert.NotNull(c.RespType);
    }

    [Fact]
    public void Options_refuse_a_timeout_that_is_not_positive()
    {
        var options = new ConnectionOptions { UdpIdleTimeout = TimeSpan.Zero };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ConnectionTracker("p", "s", 0, options));
        Assert.Contains("Connections:UdpIdleTimeout must be positive", e.Message, StringComparison.Ordinal);
    }

    internal static ConnectionPacket Udp(long t, Ipv6Address src, ushort sport, Ipv6Address dst, ushort dport, uint data, bool dns) =>
        new(t, src, dst, ConnectionKey.Udp, sport, dport, 0, 0, 0, 0, data, 48 + data, Encapsulation.Native, dns);

    internal static ConnectionPacket Icmp(long t, Ipv6Address src, Ipv6Address dst, byte type, byte code, uint data) =>
        new(t, src, dst, ConnectionKey.Icmpv6, type, code, 0, 0, 0, 0, data, 48 + data, Encapsulation.Native, false);

    private static TcpScript Run(string exchange)
    {
        var script = new TcpScript();
        foreach (var step in exchange.Split(' '))
        {
            var parts = step.Split(':', '/');
            int data = parts.Length > 2 ? int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture) : 0;
            if (parts[0] == "C")
            {
                script.C(parts[1], data);
            }
            else
            {
                script.S(parts[1], data);
            }
        }

        return script;
    }
}

/// <summary>The tracker's hot path: packets of connections it already knows allocate nothing.</summary>
public class ConnectionTrackerAllocationTests
{
    [Fact]
    public void Packets_of_known_connections_do_not_allocate()
    {
        var script = new TcpScript().C("S").S("SA").C("A");
        for (int i = 0; i < 60_000; i++)
        {
            script.C("PA", 100).S("A");
        }

        var packets = script.Packets.ToArray();
        var tracker = new ConnectionTracker("probe", "capture", long.MinValue / 2);

        // The first half warms the code up; the rest is measured in three windows of 20,000 packets, one per pass.
        int half = packets.Length / 2;
        AddRange(tracker, packets, 0, half);
        var window = (packets.Length - half) / 3;
        int added = half;
        Assert.Equal(0, Allocations.Fewest(w =>
        {
            int end = w == 2 ? packets.Length : half + ((w + 1) * window);
            AddRange(tracker, packets, half + (w * window), end);
            added = end;
        }));
        AddRange(tracker, packets, added, packets.Length);
        var c = Assert.Single(new ConnectionStitcher().Stitch(tracker.Drain()));
        Assert.Equal(60_002, c.OrigPkts);
        Assert.Equal("ShADa", c.History);
    }

    private static void AddRange(ConnectionTracker tracker, ConnectionPacket[] packets, int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            tracker.Add(packets[i]);
        }
    }
}

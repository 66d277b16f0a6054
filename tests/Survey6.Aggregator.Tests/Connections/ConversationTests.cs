using System.Buffers.Binary;
using System.Globalization;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Tests.Support;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Aggregator.Tests.Connections;

/// <summary>
/// Connections tracked from real and generated captures, through the dissector's flow view: per-direction packet
/// counts against tshark's conversation tables, and ICMPv6 errors quoting a segment leaving its connection alone.
/// </summary>
public class ConversationTests
{
    private static readonly Ipv6Address Client = Ipv6Address.Parse("2001:db8:1::10");
    private static readonly Ipv6Address Server = Ipv6Address.Parse("2001:db8:2::20");
    private static readonly Ipv6Address Router = Ipv6Address.Parse("2001:db8:ff::1");

    [Fact]
    public void An_icmpv6_error_quoting_a_segment_does_not_change_its_connection()
    {
        var exchange = Exchange();
        var plain = Connections(Write(exchange));

        // A router answers the client's data segment with Packet Too Big, quoting it.
        var quoted = exchange[3].Frame[14..];
        var withError = new List<(long, byte[])>(exchange);
        withError.Insert(4, (exchange[3].Time + 500, Ethernet(0x86DD, Ipv6(58, Icmpv6(2, 0, [0, 0, 5, 0, .. quoted]), Router, Client))));
        var connections = Connections(Write(withError));

        var tcp = Assert.Single(connections, c => c.Proto == "tcp");
        Assert.Equal(Assert.Single(plain) with { }, tcp);
        Assert.Equal(("SF", "ShADadFf", 5L, 4L), (tcp.ConnState, tcp.History, tcp.OrigPkts, tcp.RespPkts));
        var icmp = Assert.Single(connections, c => c.Proto == "icmp");
        Assert.Equal((Router.ToString(), (ushort)2, (ushort)0, 1L, 0L), (icmp.OrigH, icmp.OrigP, icmp.RespP, icmp.OrigPkts, icmp.RespPkts));
    }

    [Fact]
    public void Per_direction_packets_match_tsharks_conversations_on_a_generated_capture()
    {
        var frames = Exchange();
        frames.Add((frames[^1].Time + 1000, Ethernet(0x86DD, Ipv6(17, Udp(40000, 53, DnsQuery("example.com", 28)), Client, Server))));
        frames.Add((frames[^1].Time + 1000, Ethernet(0x86DD, Ipv6(17, Udp(53, 40000, DnsAaaaResponse("example.com", 0, Server)), Server, Client))));
        frames.Add((frames[^1].Time + 1000, Ethernet(0x86DD, Ipv6(17, Udp(40000, 53, DnsQuery("example.org", 28)), Client, Server))));
        using var file = new TempCapture(Write(frames));
        int compared = CompareWithTshark(file.Path);
        Assert.Equal(2, compared);
    }

    /// <summary>
    /// Every IPv6 TCP/UDP conversation of the shared corpus that is one connection here (tshark's conversations have
    /// no idle split) has the packets tshark counts in each direction.
    /// </summary>
    [Fact]
    public void Per_direction_packets_match_tsharks_conversations_over_the_corpus()
    {
        int compared = TestData.AllCaptures().Sum(CompareWithTshark);
        Assert.True(compared >= 20, $"only {compared} conversations compared");
        Assert.True(CompareWithTshark(TestData.Capture("zeek/ftp/ipv6.pcap")) == 6);
    }

    /// <summary>A connection's ends and per-direction packets, as the tracker or the lake's <c>connections</c> gives them.</summary>
    internal readonly record struct Counted(string Proto, string OrigH, ushort OrigP, string RespH, ushort RespP, long OrigPkts, long RespPkts);

    private static int CompareWithTshark(string capture) =>
        CompareWithTshark(capture, Connections(capture).Select(c => new Counted(c.Proto, c.OrigH, c.OrigP, c.RespH, c.RespP, c.OrigPkts, c.RespPkts)));

    /// <summary>
    /// Asserts that every TCP and UDP conversation tshark prints that is one of <paramref name="connections"/> (and the
    /// only one of its ends) has tshark's packets in each direction; returns how many were compared.
    /// </summary>
    internal static int CompareWithTshark(string capture, IEnumerable<Counted> connections)
    {
        var ours = connections
            .Where(c => c.Proto != "icmp")
            .GroupBy(c => (c.Proto, Ends: Ends(c.OrigH, c.OrigP, c.RespH, c.RespP)))
            .Where(g => g.Count() == 1)
            .ToDictionary(g => g.Key, g => g.Single());
        var run = Tool.Run("tshark", "-q", "-o", "ipv6.defragment:FALSE", "-z", "conv,tcp", "-z", "conv,udp", "-r", capture);

        // A capture cut short in its last record: tshark still prints the tables of what it read, as survey6 reads it.
        if (!run.Stderr.Contains("cut short in the middle of a packet", StringComparison.Ordinal))
        {
            run.Check();
        }

        string tshark = run.Stdout;
        string proto = "";
        int compared = 0;
        var differences = new List<string>();
        foreach (var line in tshark.Split('\n'))
        {
            if (line.StartsWith("TCP Conversations", StringComparison.Ordinal) || line.StartsWith("UDP Conversations", StringComparison.Ordinal))
            {
                proto = line[..3].ToLowerInvariant();
                continue;
            }

            var t = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (t.Length < 9 || t[1] != "<->" || !TrySplit(t[0], out var a, out ushort aPort) || !TrySplit(t[2], out var b, out ushort bPort))
            {
                continue;
            }

            // tshark: "<-" frames are B to A, "->" frames A to B.
            long bToA = long.Parse(t[3], CultureInfo.InvariantCulture);
            long aToB = long.Parse(t[6], CultureInfo.InvariantCulture);
            if (!ours.TryGetValue((proto, Ends(a, aPort, b, bPort)), out var c))
            {
                continue;
            }

            compared++;
            bool origIsA = c.OrigH == a && c.OrigP == aPort;
            var (origToResp, respToOrig) = origIsA ? (aToB, bToA) : (bToA, aToB);
            if (c.OrigPkts != origToResp || c.RespPkts != respToOrig)
            {
                differences.Add($"{capture} {proto} {t[0]} <-> {t[2]}: tshark {origToResp}/{respToOrig}, survey6 {c.OrigPkts}/{c.RespPkts}");
            }
        }

        Assert.True(differences.Count == 0, string.Join('\n', differences));
        return compared;
    }

    private static string Ends(string h1, ushort p1, string h2, ushort p2)
    {
        string x = $"[{h1}]:{p1}";
        string y = $"[{h2}]:{p2}";
        return string.CompareOrdinal(x, y) <= 0 ? x + " " + y : y + " " + x;
    }

    private static bool TrySplit(string endpoint, out string address, out ushort port)
    {
        int colon = endpoint.LastIndexOf(':');
        address = colon > 0 ? endpoint[..colon] : "";
        port = 0;
        return address.Contains(':', StringComparison.Ordinal) && ushort.TryParse(endpoint[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port);
    }

    private static IReadOnlyList<Connection> Connections(string capture)
    {
        using var reader = CaptureReader.Open(capture);
        var tracker = new ConnectionTracker("probe", capture, 0);
        var r = new PacketRecord();
        long number = 0;
        while (reader.TryRead(out var frame))
        {
            FrameDissection.Dissect(frame, ++number, ref r);
            tracker.Add(r);
        }

        return new ConnectionStitcher().Stitch(tracker.Drain());
    }

    private static IReadOnlyList<Connection> Connections(byte[] capture)
    {
        using var file = new TempCapture(capture);
        return Connections(file.Path);
    }

    /// <summary>A full TCP exchange: handshake, data both ways, FIN both ways, last ACK (5 client, 4 server packets).</summary>
    internal static List<(long Time, byte[] Frame)> Exchange()
    {
        uint c = 0xFFFF_FFF0;
        uint s = 5000;
        var frames = new List<(long, byte[])>();
        long t = 1_700_000_000_000_000_000;
        void Add(bool fromClient, ushort flags, uint seq, uint ack, int data)
        {
            var (src, dst, sp, dp) = fromClient ? (Client, Server, (ushort)50000, (ushort)443) : (Server, Client, (ushort)443, (ushort)50000);
            frames.Add((t, Ethernet(0x86DD, Ipv6(6, Segment(sp, dp, flags, seq, ack, new byte[data]), src, dst))));
            t += 1_000_000;
        }

        Add(true, 0x002, c, 0, 0);
        Add(false, 0x012, s, c + 1, 0);
        Add(true, 0x010, c + 1, s + 1, 0);
        Add(true, 0x018, c + 1, s + 1, 100);
        Add(false, 0x010, s + 1, c + 101, 0);
        Add(false, 0x018, s + 1, c + 101, 200);
        Add(true, 0x011, c + 101, s + 201, 0);
        Add(false, 0x011, s + 201, c + 102, 0);
        Add(true, 0x010, c + 102, s + 202, 0);
        return frames;
    }

    private static byte[] Segment(ushort sourcePort, ushort destinationPort, ushort flags, uint seq, uint ack, byte[] payload)
    {
        var segment = new byte[20 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(8), ack);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(12), (ushort)((5 << 12) | flags));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(14), 64000);
        payload.CopyTo(segment.AsSpan(20));
        return segment;
    }

    internal static byte[] Write(List<(long Time, byte[] Frame)> frames)
    {
        var file = new CaptureFile();
        foreach (var (time, frame) in frames)
        {
            file.Add(time, frame);
        }

        return file.ToArray();
    }

    private sealed class TempCapture : IDisposable
    {
        public TempCapture(byte[] bytes)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"survey6-conn-{Guid.NewGuid():N}.pcapng");
            File.WriteAllBytes(Path, bytes);
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }
}

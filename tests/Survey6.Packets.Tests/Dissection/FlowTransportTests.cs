using System.Buffers.Binary;
using System.Globalization;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Packets.Tests.Capture;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>
/// The flow view's transport fields (<c>flow_tcp_*</c>, <c>flow_icmpv6_*</c>, <c>flow_data_len</c>, <c>flow_dns</c>,
/// <c>flow_quote</c>): always the innermost non-quoted packet's own header, never one quoted inside an ICMPv6 error,
/// while the wire view keeps tshark's first-occurrence rule.
/// </summary>
public class FlowTransportTests
{
    private static readonly Ipv6Address Client = Ipv6Address.Parse("2001:db8:1::10");
    private static readonly Ipv6Address Server = Ipv6Address.Parse("2001:db8:2::20");
    private static readonly Ipv6Address Router = Ipv6Address.Parse("2001:db8:ff::1");

    /// <summary>A TCP segment with sequence and acknowledgement numbers and a window (FrameBuilder's has zeros).</summary>
    private static byte[] TcpSegment(ushort sourcePort, ushort destinationPort, ushort flags, uint seq, uint ack, ushort window, byte[]? payload = null, int optionWords = 0)
    {
        payload ??= [];
        int headerLength = 20 + (4 * optionWords);
        var segment = new byte[headerLength + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(8), ack);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(12), (ushort)(((headerLength / 4) << 12) | flags));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(14), window);
        for (int i = 20; i < headerLength; i++)
        {
            segment[i] = 1; // NOP options
        }

        payload.CopyTo(segment.AsSpan(headerLength));
        return segment;
    }

    private static PacketRecord Dissect(byte[] frame, int? capturedLength = null)
    {
        var r = new PacketRecord();
        r.Reset();
        var data = frame.AsSpan(0, capturedLength ?? frame.Length);
        r.FrameLength = (uint)frame.Length;
        r.CapturedLength = (uint)data.Length;
        PacketDissector.Dissect(data, LinkType.Ethernet, ref r);
        return r;
    }

    [Fact]
    public void A_tcp_segment_gives_its_flags_numbers_window_and_data_length()
    {
        var data = new byte[100];
        var frame = Ethernet(0x86DD, Ipv6(6, TcpSegment(50000, 443, 0x018, 0xFFFF_FFF0, 12345, 0, data, optionWords: 3), Client, Server));
        var r = Dissect(frame);
        Assert.True(r.Has(FieldPresence.Flow | FieldPresence.FlowTcp));
        Assert.Equal(0x018, r.FlowTcpFlags);
        Assert.Equal(0xFFFF_FFF0u, r.FlowTcpSequence);
        Assert.Equal(12345u, r.FlowTcpAcknowledgement);
        Assert.Equal(0, r.FlowTcpWindow);
        Assert.Equal(100u, r.FlowDataLength);
        Assert.False(r.Has(FieldPresence.FlowUdp));
        Assert.False(r.Has(FieldPresence.FlowQuote));
    }

    [Fact]
    public void The_data_length_counts_what_the_headers_declare_not_what_the_snap_length_kept()
    {
        var frame = Ethernet(0x86DD, Ipv6(0, Extension(6, TcpSegment(1, 2, 0x010, 7, 8, 9, new byte[1200]))));
        var r = Dissect(frame, capturedLength: 14 + 40 + 8 + 20 + 10);
        Assert.True(r.Has(FieldPresence.FlowTcp));
        Assert.Equal(1200u, r.FlowDataLength);
    }

    [Fact]
    public void A_tcp_header_cut_before_its_window_gives_no_flow_tcp_fields()
    {
        var frame = Ethernet(0x86DD, Ipv6(6, TcpSegment(1, 2, 0x002, 7, 8, 9)));
        var r = Dissect(frame, capturedLength: 14 + 40 + 15);
        Assert.False(r.Has(FieldPresence.FlowTcp));
        Assert.True(r.Has(FieldPresence.Flow));
    }

    [Fact]
    public void An_icmpv6_error_quoting_tcp_keeps_the_quoted_flags_in_the_wire_view_only()
    {
        var quoted = Ipv6(6, TcpSegment(50000, 443, 0x002, 1000, 0, 64800), Client, Server);
        var frame = Ethernet(0x86DD, Ipv6(58, Icmpv6(1, 4, [0, 0, 0, 0, .. quoted]), Router, Client));
        var r = Dissect(frame);

        // tshark's first occurrence: the quoted SYN's ports and flags.
        Assert.True(r.Has(FieldPresence.TcpFlags));
        Assert.Equal(0x002, r.TcpFlags);

        // The flow view: the ICMPv6 error itself, which quotes a packet.
        Assert.Equal(Router, r.FlowSource);
        Assert.Equal(PacketDissector.ProtocolIcmpv6, r.FlowProtocol);
        Assert.False(r.Has(FieldPresence.FlowTcp));
        Assert.True(r.Has(FieldPresence.FlowIcmpv6 | FieldPresence.FlowQuote));
        Assert.Equal(1, r.FlowIcmpv6Type);
        Assert.Equal(4, r.FlowIcmpv6Code);
        Assert.Equal((uint)quoted.Length, r.FlowDataLength);
        Assert.Equal(0, r.FlowTcpFlags);
    }

    [Fact]
    public void A_dns_message_counts_for_the_flow_only_when_it_is_not_quoted()
    {
        var query = Ipv6(17, Udp(40000, 53, DnsQuery("www.example.com", 28)), Client, Server);
        var direct = Dissect(Ethernet(0x86DD, query));
        Assert.True(direct.Has(FieldPresence.FlowDns | FieldPresence.FlowUdp));
        Assert.Equal((uint)DnsQuery("www.example.com", 28).Length, direct.FlowDataLength);

        var error = Dissect(Ethernet(0x86DD, Ipv6(58, Icmpv6(1, 3, [0, 0, 0, 0, .. query]), Router, Client)));
        Assert.True(error.Has(FieldPresence.Dns));
        Assert.False(error.Has(FieldPresence.FlowDns));
        Assert.False(error.Has(FieldPresence.FlowUdp));
    }

    [Fact]
    public void A_tunnelled_packet_replaces_what_its_carrier_left_in_the_flow_view()
    {
        // IPv6 over UDP 3544 over IPv6: the outer UDP first fills the flow fields, then the inner packet takes over.
        var inner = Ipv6(6, TcpSegment(1286, 80, 0x012, 5, 6, 7, [1, 2, 3]), source: Client, destination: Server);
        var frame = Ethernet(0x86DD, Ipv6(17, Udp(40000, 3544, inner), Router, Server));
        var r = Dissect(frame);
        Assert.Equal(Client, r.FlowSource);
        Assert.True(r.Has(FieldPresence.FlowTcp));
        Assert.False(r.Has(FieldPresence.FlowUdp));
        Assert.Equal(3u, r.FlowDataLength);
        Assert.Equal((ushort)1286, r.FlowSourcePort);
    }

    [Fact]
    public void Icmpv6_data_length_is_what_follows_the_first_eight_octets()
    {
        var r = Dissect(Ethernet(0x86DD, Ipv6(58, Icmpv6(128, 0, [0, 1, 0, 2, .. new byte[56]]))));
        Assert.True(r.Has(FieldPresence.FlowIcmpv6));
        Assert.False(r.Has(FieldPresence.FlowQuote));
        Assert.Equal(56u, r.FlowDataLength);
        Assert.Equal(128, r.FlowIcmpv6Type);
    }

    [Fact]
    public void Dissecting_tcp_and_icmpv6_errors_does_not_allocate()
    {
        byte[][] frames =
        [
            Ethernet(0x86DD, Ipv6(6, TcpSegment(50000, 443, 0x018, 1, 2, 3, new byte[40]))),
            Ethernet(0x86DD, Ipv6(58, Icmpv6(1, 4, [0, 0, 0, 0, .. Ipv6(6, TcpSegment(50000, 443, 0x002, 1, 0, 3))]))),
        ];
        Assert.Equal(0, AllocatedWhileDissecting(frames));
    }

    /// <summary>
    /// Where the flow packet's TCP header is the frame's first (everything but ICMPv6 errors and IPv4-only TCP),
    /// the flow TCP fields equal tshark's <c>tcp.flags</c>, <c>tcp.seq</c>, <c>tcp.ack</c>, <c>tcp.window_size_value</c>
    /// and <c>tcp.len</c> with absolute sequence numbers, over every capture of the corpus (but first fragments, whose
    /// length tshark does not give without reassembly).
    /// </summary>
    [Fact]
    public void Flow_tcp_fields_match_tshark_over_the_corpus()
    {
        int compared = 0;
        var differences = new List<string>();
        foreach (var capture in TestData.AllCaptures())
        {
            var tshark = Tool.Run(
                "tshark", "-r", capture, "-o", "ipv6.defragment:FALSE", "-o", "ip.defragment:FALSE", "-o", "tcp.relative_sequence_numbers:FALSE",
                "-o", "tcp.analyze_sequence_numbers:FALSE", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f",
                "-e", "frame.number", "-e", "tcp.flags", "-e", "tcp.seq", "-e", "tcp.ack", "-e", "tcp.window_size_value", "-e", "tcp.len", "-e", "icmpv6.type");
            var rows = tshark.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToDictionary(c => long.Parse(c[0], CultureInfo.InvariantCulture));
            using var reader = CaptureReader.Open(capture);
            var r = new PacketRecord();
            long number = 0;
            while (reader.TryRead(out var frame))
            {
                FrameDissection.Dissect(frame, ++number, ref r, DissectorOptions.None);
                // tshark leaves tcp.len empty for the first fragment of a fragmented segment (no reassembly here);
                // survey6 counts that fragment's share.
                if (!r.Has(FieldPresence.FlowTcp) || !rows.TryGetValue(number, out var row) || row[6].Length > 0 || row[5].Length == 0)
                {
                    continue;
                }

                string ours = $"0x{r.FlowTcpFlags:x4}\t{r.FlowTcpSequence}\t{r.FlowTcpAcknowledgement}\t{r.FlowTcpWindow}\t{r.FlowDataLength}";
                string theirs = string.Join('\t', row[1..6]);
                compared++;
                if (ours != theirs)
                {
                    differences.Add($"{TestData.RelativePath(capture)} frame {number}: tshark {theirs}, survey6 {ours}");
                }
            }
        }

        Assert.True(differences.Count == 0, string.Join('\n', differences.Take(20)));
        Assert.True(compared > 150, $"only {compared} frames compared");
    }
}

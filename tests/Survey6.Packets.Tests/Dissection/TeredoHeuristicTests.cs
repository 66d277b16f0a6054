using System.Buffers.Binary;
using CsCheck;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>Teredo between a client and a relay or peer, on UDP ports other than 3544.</summary>
public class TeredoHeuristicTests
{
    // RFC 4380's example client: server 65.54.227.120, client 192.0.2.45:40000 behind a cone NAT.
    internal static readonly Ipv6Address TeredoClient = Ipv6Address.Parse("2001:0:4136:e378:8000:63bf:3fff:fdd2");
    private static readonly Ipv6Address LinkLocal = Ipv6Address.Parse("fe80::8000:ffff:ffff:fffd");
    private const ushort ClientPort = 40000;
    private const ushort RelayPort = 51413;

    internal static readonly byte[] OriginIndication = [0, 0, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2];

    /// <summary>An authentication header (RFC 4380 5.1.1) with a client identifier and authentication value of the given lengths.</summary>
    internal static byte[] Authentication(int idLength, int authLength)
    {
        var header = new byte[13 + idLength + authLength];
        header[1] = 1;
        header[2] = (byte)idLength;
        header[3] = (byte)authLength;
        header.AsSpan(4, idLength + authLength).Fill(0xA5);
        header.AsSpan(4 + idLength + authLength, 8).Fill(0x5A); // nonce; the confirmation byte stays 0
        return header;
    }

    /// <summary>Ethernet, IPv4 and UDP between a Teredo client and a relay, carrying <paramref name="teredo"/>.</summary>
    internal static byte[] OverUdp(byte[] teredo, ushort sourcePort = ClientPort, ushort destinationPort = RelayPort) =>
        Ethernet(0x0800, Ipv4(17, Udp(sourcePort, destinationPort, teredo)));

    private static PacketRecord Dissect(byte[] frame, DissectorOptions options = DissectorOptions.Default, int? originalLength = null) =>
        PacketDissectorTests.Dissect(frame, LinkType.Ethernet, options, originalLength);

    private static bool TakenAsTeredo(in PacketRecord r)
    {
        for (int i = 0; i < r.PathLength; i++)
        {
            if (r.LayerAt(i) == Layer.Teredo)
            {
                return true;
            }
        }

        Assert.False(r.HasIpv6);
        return false;
    }

    [Fact]
    public void Plain_teredo_to_a_relay_is_decapsulated()
    {
        var r = Dissect(OverUdp(Ipv6(6, Tcp(1286, 80, 0x002), source: TeredoClient, destination: Destination)));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(Encapsulation.Teredo, r.Encapsulation);
        Assert.Equal(TeredoClient, r.Ipv6Source);
        Assert.Equal(ClientPort, r.UdpSourcePort); // the outer UDP is the first occurrence, as in tshark
        Assert.Equal(TeredoClient, r.FlowSource);
        Assert.Equal(Destination, r.FlowDestination);
        Assert.Equal(6, r.FlowProtocol);
        Assert.Equal((ushort)1286, r.FlowSourcePort);
        Assert.Equal((ushort)80, r.FlowDestinationPort);
        Assert.Equal(Anomaly.None, r.Anomalies);
    }

    [Fact]
    public void A_packet_to_the_teredo_client_is_decapsulated_too()
    {
        var r = Dissect(OverUdp(Ipv6(58, Icmpv6(128, 0, [0, 1, 0, 1]), source: Destination, destination: TeredoClient), RelayPort, ClientPort));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(TeredoClient, r.FlowDestination);
        Assert.Equal(128, r.Icmpv6Type);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(3, 20)]
    [InlineData(255, 255)]
    public void An_authentication_header_is_skipped(int idLength, int authLength)
    {
        var r = Dissect(OverUdp([.. Authentication(idLength, authLength), .. Ipv6(17, Udp(4000, 53, DnsQuery("example.com", 28)), source: TeredoClient)]));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(TeredoClient, r.FlowSource);
        Assert.Equal((ushort)53, r.FlowDestinationPort);
        Assert.Equal("example.com", r.Dns.QueryNameToString());
    }

    [Fact]
    public void An_origin_indication_is_skipped()
    {
        var r = Dissect(OverUdp([.. OriginIndication, .. Ipv6(58, Icmpv6(129, 0, [0, 1, 0, 1]), source: Destination, destination: TeredoClient)]));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(129, r.Icmpv6Type);
    }

    [Fact]
    public void Authentication_then_origin_indication_are_both_skipped()
    {
        var r = Dissect(OverUdp([.. Authentication(0, 0), .. OriginIndication, .. Ipv6(58, Icmpv6(134, 0, new byte[12]), source: LinkLocal, destination: TeredoClient)]));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(134, r.Icmpv6Type);
    }

    [Fact]
    public void A_bubble_between_link_local_addresses_is_teredo()
    {
        // RFC 4380 2.8: a bubble is an IPv6 header with No Next Header and no payload; its addresses need not be Teredo's.
        var r = Dissect(OverUdp(Ipv6(59, [], source: LinkLocal, destination: Ipv6Address.Parse("fe80::708d:fe83:4114:a512"))));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(59, r.FlowProtocol);
        Assert.Equal(0u, r.FlowPayloadBytes);
    }

    [Fact]
    public void An_empty_packet_that_is_not_a_bubble_needs_a_teredo_address()
    {
        Assert.False(TakenAsTeredo(Dissect(OverUdp(Ipv6(6, [], source: LinkLocal, destination: LinkLocal)))));
        Assert.True(TakenAsTeredo(Dissect(OverUdp(Ipv6(6, [], source: LinkLocal, destination: TeredoClient)))));
    }

    [Fact]
    public void Ipv6_without_a_teredo_address_is_refused_though_tshark_would_take_it()
    {
        // 2001:db8::/32 shares the first 16 bits with the Teredo prefix 2001::/32 but is not in it.
        var r = Dissect(OverUdp(Ipv6(6, Tcp(1286, 80, 0x002), source: Source, destination: Destination)));
        Assert.False(TakenAsTeredo(r));
        Assert.Equal(ClientPort, r.UdpSourcePort);
        Assert.Equal(Layer.Udp, r.LayerAt(r.PathLength - 1));
    }

    [Fact]
    public void A_payload_length_that_does_not_fill_the_datagram_is_refused()
    {
        var packet = Ipv6(6, Tcp(1286, 80, 0x002), source: TeredoClient);
        Assert.False(TakenAsTeredo(Dissect(OverUdp([.. packet, 0]))));
        Assert.False(TakenAsTeredo(Dissect(OverUdp(Ipv6(6, Tcp(1286, 80, 0x002), source: TeredoClient, payloadLength: 21)))));
        Assert.False(TakenAsTeredo(Dissect(OverUdp(Ipv6(59, [0], source: LinkLocal, destination: LinkLocal, payloadLength: 0)))));
    }

    [Fact]
    public void A_version_other_than_6_is_refused()
    {
        var packet = Ipv6(6, Tcp(1286, 80, 0x002), source: TeredoClient);
        packet[0] = 0x45;
        Assert.False(TakenAsTeredo(Dissect(OverUdp(packet))));
    }

    [Fact]
    public void A_frame_cut_by_the_snap_length_is_judged_by_its_udp_length()
    {
        var frame = OverUdp(Ipv6(6, Tcp(1286, 80, 0x018, new byte[400]), source: TeredoClient));
        int headers = 14 + 20 + 8 + 40;

        var cut = Dissect(frame[..(headers + 10)], originalLength: frame.Length);
        Assert.True(TakenAsTeredo(cut));
        Assert.Equal(TeredoClient, cut.FlowSource);
        Assert.Equal((ushort)1286, cut.FlowSourcePort);

        // Less than an IPv6 header captured: nothing to check the addresses against, so not Teredo (tshark agrees).
        Assert.False(TakenAsTeredo(Dissect(frame[..(headers - 1)], originalLength: frame.Length)));
    }

    [Fact]
    public void Tshark_defaults_take_only_port_3544()
    {
        var teredo = Ipv6(6, Tcp(1286, 80, 0x002), source: TeredoClient);
        Assert.False(TakenAsTeredo(Dissect(OverUdp(teredo), DissectorOptions.None)));
        Assert.True(TakenAsTeredo(Dissect(OverUdp(teredo, destinationPort: 3544), DissectorOptions.None)));
    }

    [Fact]
    public void A_port_with_its_own_protocol_wins_over_the_heuristic()
    {
        // tshark tries the ports' protocols first; DNS on 53 stays DNS, however its payload looks.
        var r = Dissect(OverUdp(Ipv6(59, [], source: TeredoClient), destinationPort: 53));
        Assert.False(TakenAsTeredo(r));
        Assert.True(r.Has(FieldPresence.Dns));
    }

    [Fact]
    public void A_datagram_quoted_in_an_icmp_error_is_not_decapsulated()
    {
        var quoted = Ipv4(17, Udp(ClientPort, RelayPort, Ipv6(59, [], source: TeredoClient)));
        var r = Dissect(Ethernet(0x0800, Ipv4(1, [3, 3, 0, 0, 0, 0, 0, 0, .. quoted])));
        Assert.False(TakenAsTeredo(r));
        Assert.Equal(ClientPort, r.UdpSourcePort);
    }

    [Fact]
    public void Teredo_over_udp_over_ipv6_is_decapsulated_as_tshark_and_zeek_do()
    {
        var r = Dissect(Ethernet(0x86DD, Ipv6(17, Udp(ClientPort, RelayPort, Ipv6(59, [], source: TeredoClient)), source: LinkLocal)));
        Assert.True(TakenAsTeredo(r));
        Assert.Equal(Encapsulation.Native, r.Encapsulation); // how the first IPv6 header travelled
        Assert.Equal(LinkLocal, r.Ipv6Source); // the outer header, tshark's first occurrence
        Assert.Equal(TeredoClient, r.FlowSource);
    }

    [Fact]
    public void Dissecting_teredo_on_any_port_does_not_allocate()
    {
        byte[][] frames =
        [
            OverUdp([.. Authentication(2, 2), .. OriginIndication, .. Ipv6(6, Tcp(1286, 80, 0x018), source: TeredoClient)]),
            OverUdp(Ipv6(6, Tcp(1286, 80, 0x018), source: Source)), // refused
        ];
        Assert.Equal(0, AllocatedWhileDissecting(frames, warmUp: 100));
    }

    /// <summary>Ports survey6 gives to a protocol of their own: the heuristic never sees these.</summary>
    private static readonly ushort[] ClaimedPorts = [53, 1701, 3544, 5353, 5355];

    private static readonly Gen<ushort> FreePort = Gen.UShort.Where(p => p != 0 && Array.IndexOf(ClaimedPorts, p) < 0);

    /// <summary>
    /// Random UDP payloads are not Teredo. To be taken, one needs a version-6 nibble (2^-4), a payload length
    /// that matches the datagram exactly (2^-16) and either a Teredo address (2 x 2^-32) or, for exactly 40
    /// bytes, No Next Header (2^-8): at most 2^-28 for a 40-byte payload and 2^-51 for any other length (the
    /// authentication and origin-indication paths need two more zero bytes and are rarer still). tshark's check
    /// alone would take one in 2^20 of the right length. Over 200,000 payloads the expected count is below
    /// 10^-3, so a single one taken fails the test.
    /// </summary>
    [Fact]
    public void Random_udp_payloads_are_not_taken_as_teredo()
    {
        int taken = 0;
        var payload = Gen.OneOf(Gen.Byte.Array[0, 600], Gen.Byte.Array[40]); // 40 bytes: the bubble's size, the likeliest to pass
        Gen.Select(FreePort, FreePort, payload).Sample((source, destination, bytes) =>
        {
            if (TakenAsTeredo(Dissect(OverUdp(bytes, source, destination))))
            {
                Interlocked.Increment(ref taken);
            }
        }, iter: 200_000);
        Assert.Equal(0, taken);
    }

    /// <summary>
    /// Payloads that pass tshark's check (version 6, exact length, optional authentication and origin headers)
    /// with random addresses, next header and length: taken exactly when an address is in 2001::/32 or the
    /// packet is a bubble.
    /// </summary>
    [Fact]
    public void Ipv6_shaped_payloads_are_taken_exactly_when_teredo_addressed_or_a_bubble()
    {
        var address = Gen.OneOf(
            Gen.Select(Gen.ULong, Gen.ULong, (high, low) => new Ipv6Address(high, low)),
            Gen.Select(Gen.UInt, Gen.ULong, (server, low) => new Ipv6Address(((ulong)Ipv6AddressClassifier.TeredoPrefix << 32) | server, low)),
            Gen.Select(Gen.UInt, Gen.ULong, (server, low) => new Ipv6Address(0x2001_0DB8_0000_0000UL | server, low)));
        var nextHeader = Gen.OneOf(Gen.Byte, Gen.Const((byte)59));
        var body = Gen.OneOf(Gen.Byte.Array[0, 64], Gen.Const(Array.Empty<byte>()));
        var prefix = Gen.OneOf(
            Gen.Const(Array.Empty<byte>()),
            Gen.Const(OriginIndication),
            Gen.Select(Gen.Int[0, 40], Gen.Int[0, 40], Authentication),
            Gen.Select(Gen.Int[0, 40], Gen.Int[0, 40], (id, auth) => (byte[])[.. Authentication(id, auth), .. OriginIndication]));
        Gen.Select(address, address, nextHeader, body, prefix, FreePort).Sample((source, destination, next, payload, headers, port) =>
        {
            var packet = Ipv6(next, payload, source: source, destination: destination);
            bool teredoAddress = (source.High >> 32) == Ipv6AddressClassifier.TeredoPrefix || (destination.High >> 32) == Ipv6AddressClassifier.TeredoPrefix;
            bool bubble = next == 59 && payload.Length == 0;
            var r = Dissect(OverUdp([.. headers, .. packet], port, RelayPort));
            Assert.Equal(teredoAddress || bubble, TakenAsTeredo(r));
        }, iter: 20_000);
    }
}

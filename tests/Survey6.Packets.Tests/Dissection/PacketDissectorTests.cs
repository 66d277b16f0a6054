using System.Buffers.Binary;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Packets.Tests.Dissection;

public class PacketDissectorTests
{
    /// <summary>Dissects a frame that was <paramref name="originalLength"/> long on the wire (by default, all of it was captured).</summary>
    internal static PacketRecord Dissect(byte[] frame, LinkType linkType = LinkType.Ethernet, DissectorOptions options = DissectorOptions.Default, int? originalLength = null)
    {
        var r = new PacketRecord();
        r.Reset();
        r.FrameLength = (uint)(originalLength ?? frame.Length);
        r.CapturedLength = (uint)frame.Length;
        PacketDissector.Dissect(frame, linkType, ref r, options);
        return r;
    }

    [Fact]
    public void Ipv6_fixed_header_fields_are_read()
    {
        var r = Dissect(Ethernet(0x86DD, Ipv6(17, Udp(1000, 2000, [1, 2, 3]), hopLimit: 7, trafficClass: 0xB8, flowLabel: 0xABCDE)));
        Assert.True(r.HasIpv6);
        Assert.Equal(Source, r.Ipv6Source);
        Assert.Equal(Destination, r.Ipv6Destination);
        Assert.Equal(17, r.Ipv6NextHeader);
        Assert.Equal(7, r.Ipv6HopLimit);
        Assert.Equal(0xB8, r.Ipv6TrafficClass);
        Assert.Equal(0xABCDEu, r.Ipv6FlowLabel);
        Assert.Equal(11, r.Ipv6PayloadLength);
        Assert.Equal((ushort)1000, r.UdpSourcePort);
        Assert.Equal((ushort)2000, r.UdpDestinationPort);
        Assert.Equal(Encapsulation.Native, r.Encapsulation);
        Assert.Equal(17, r.FlowProtocol);
        Assert.Equal((ushort)1000, r.FlowSourcePort);
        Assert.Equal(Anomaly.None, r.Anomalies);
    }

    [Fact]
    public void Stacked_vlan_tags_are_skipped_and_the_first_id_kept()
    {
        var r = Dissect(Ethernet(0x86DD, Ipv6(59, []), 0x0064, 0x00C8, 0x012C));
        Assert.True(r.HasIpv6);
        Assert.Equal(3, r.VlanCount);
        Assert.Equal((ushort)100, r.VlanId);
        Assert.Equal(59, r.FlowProtocol);
    }

    [Fact]
    public void Extension_chain_is_followed_to_the_upper_layer()
    {
        var udp = Udp(5353, 5353, DnsQuery("host.local", 28));
        var chain = Extension(60, Extension(43, Extension(44, Fragment(17, udp, 0, more: true, id: 0xCAFEBABE), units: 0, routingType: 4, segmentsLeft: 2)));
        var r = Dissect(Ethernet(0x86DD, Ipv6(0, chain)));
        Assert.Equal(0, r.Ipv6NextHeader);
        Assert.Equal(4, r.ExtensionCount);
        Assert.Equal(new byte[] { 0, 60, 43, 44 }, Enumerable.Range(0, r.ExtensionCount).Select(i => r.ExtensionAt(i)).ToArray());
        Assert.Equal(4, r.RoutingType);
        Assert.Equal(2, r.SegmentsLeft);
        Assert.True(r.FragmentMore);
        Assert.Equal(0, r.FragmentOffset);
        Assert.Equal(0xCAFEBABEu, r.FragmentId);
        Assert.Equal(17, r.FlowProtocol);
        Assert.Equal((ushort)5353, r.UdpSourcePort);
        Assert.Equal(DnsTransportKind.Mdns, r.DnsTransport);
    }

    [Fact]
    public void A_later_fragment_has_no_transport_fields()
    {
        var r = Dissect(Ethernet(0x86DD, Ipv6(44, Fragment(17, Udp(1, 2, new byte[16]), 185, more: false, id: 9))));
        Assert.Equal((ushort)185, r.FragmentOffset);
        Assert.False(r.Has(FieldPresence.UdpSourcePort));
        Assert.Equal(17, r.FlowProtocol);
    }

    [Fact]
    public void Six_in_four_reports_the_inner_ipv6_packet()
    {
        var inner = Ipv6(58, Icmpv6(128, 0, [0, 1, 0, 1]));
        var r = Dissect(Ethernet(0x0800, Ipv4(41, inner)));
        Assert.Equal(Encapsulation.SixInFour, r.Encapsulation);
        Assert.True(r.Has(FieldPresence.Ipv4Header));
        Assert.Equal(0xC0000201u, r.Ipv4Source);
        Assert.Equal(Source, r.Ipv6Source);
        Assert.Equal(128, r.Icmpv6Type);
        Assert.Equal(58, r.FlowProtocol);
    }

    [Fact]
    public void Teredo_with_origin_indication_is_decapsulated()
    {
        var origin = new byte[] { 0, 0, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2 };
        var teredoPayload = origin.Concat(Ipv6(17, Udp(4000, 53, DnsQuery("example.com", 28)))).ToArray();
        var r = Dissect(Ethernet(0x0800, Ipv4(17, Udp(40000, 3544, teredoPayload))));
        Assert.Equal(Encapsulation.Teredo, r.Encapsulation);
        Assert.Equal((ushort)40000, r.UdpSourcePort); // first occurrence is the outer UDP, as in tshark
        Assert.Equal((ushort)4000, r.FlowSourcePort);
        Assert.Equal((ushort)53, r.FlowDestinationPort);
        Assert.True(r.Has(FieldPresence.Dns));
    }

    [Fact]
    public void Ipv6_in_ipv6_keeps_outer_fields_and_inner_flow()
    {
        var innerSource = Ipv6Address.Parse("fd5e:6a00::10");
        var inner = Ipv6(6, Tcp(443, 50000, 0x012), source: innerSource);
        var r = Dissect(Ethernet(0x86DD, Ipv6(41, inner)));
        Assert.Equal(41, r.Ipv6NextHeader);
        Assert.Equal(Source, r.Ipv6Source);
        Assert.Equal(innerSource, r.FlowSource);
        Assert.Equal(Encapsulation.Ipv6InIpv6, r.Encapsulation);
        Assert.Equal(2, r.Ipv6HeaderCount);
        Assert.Equal((ushort)0x012, r.TcpFlags);
        Assert.Equal(6, r.FlowProtocol);
    }

    [Fact]
    public void Icmpv6_error_takes_transport_fields_from_the_quoted_packet()
    {
        var quoted = Ipv6(17, Udp(30000, 13000, new byte[4]), source: Destination, destination: Source);
        var r = Dissect(Ethernet(0x86DD, Ipv6(58, Icmpv6(1, 4, new byte[4].Concat(quoted).ToArray()))));
        Assert.Equal(1, r.Icmpv6Type);
        Assert.Equal(4, r.Icmpv6Code);
        Assert.Equal((ushort)30000, r.UdpSourcePort);
        Assert.Equal(Source, r.Ipv6Source); // the outer header stays first
        Assert.Equal(58, r.FlowProtocol);
        Assert.Equal(0, r.FlowSourcePort);
        Assert.Equal(Source, r.FlowSource);
    }

    [Fact]
    public void Router_advertisement_flags_and_prefixes_are_read()
    {
        var body = new byte[12 + 32];
        body[0] = 64;          // cur hop limit
        body[1] = 0xC0;        // M and O
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), 1800);
        var option = body.AsSpan(12);
        option[0] = 3;
        option[1] = 4;
        option[2] = 64;
        Ipv6Address.Parse("2001:db8:1:2::").Write(option[16..]);
        var r = Dissect(Ethernet(0x86DD, Ipv6(58, Icmpv6(134, 0, body))));
        Assert.True(r.Has(FieldPresence.RouterAdvertisement));
        Assert.Equal(0xC0, r.RouterAdvertisementFlags);
        Assert.Equal((ushort)1800, r.RouterLifetime);
        Assert.Equal(1, r.AdvertisedPrefixCount);
        Assert.Equal(Ipv6Address.Parse("2001:db8:1:2::"), r.PrefixAt(0));
        Assert.Equal(64, r.PrefixLengthAt(0));
    }

    [Fact]
    public void Neighbor_solicitation_target_is_read()
    {
        var body = new byte[4 + 16];
        Ipv6Address.Parse("2001:db8::99").Write(body.AsSpan(4));
        var r = Dissect(Ethernet(0x86DD, Ipv6(58, Icmpv6(135, 0, body))));
        Assert.Equal(Ipv6Address.Parse("2001:db8::99"), r.NdTarget);
    }

    [Fact]
    public void Truncated_header_keeps_the_fields_that_were_captured()
    {
        var full = Ethernet(0x86DD, Ipv6(17, Udp(1, 2, [])));
        var r = Dissect(full[..48]);
        Assert.True(r.Has(FieldPresence.Ipv6Source));
        Assert.False(r.Has(FieldPresence.Ipv6Destination));
        Assert.True(r.Has(FieldPresence.Ipv6HopLimit));
        Assert.True((r.Anomalies & Anomaly.TruncatedIpv6Header) != 0);
    }

    [Fact]
    public void Wrong_ip_version_yields_no_ipv6_fields()
    {
        var packet = Ipv6(17, Udp(1, 2, []));
        packet[0] = 0x45;
        var r = Dissect(Ethernet(0x86DD, packet));
        Assert.True(r.HasIpv6);
        Assert.False(r.Has(FieldPresence.Ipv6Source));
        Assert.True((r.Anomalies & Anomaly.BadIpVersion) != 0);
    }

    public static TheoryData<LinkType, byte[]> LinkLayers()
    {
        var ipv6 = Ipv6(17, Udp(1111, 2222, [9]));
        var data = new TheoryData<LinkType, byte[]>
        {
            { LinkType.Raw, ipv6 },
            { LinkType.Ipv6, ipv6 },
            { LinkType.LinuxSll, new byte[14].Concat(new byte[] { 0x86, 0xDD }).Concat(ipv6).ToArray() },
            { LinkType.LinuxSll2, new byte[] { 0x86, 0xDD }.Concat(new byte[18]).Concat(ipv6).ToArray() },
            { LinkType.Ppp, new byte[] { 0xFF, 0x03, 0x00, 0x57 }.Concat(ipv6).ToArray() },
            { LinkType.Ppp, new byte[] { 0x57 }.Concat(ipv6).ToArray() },
            { LinkType.Ethernet, Ethernet(0x8864, new byte[] { 0x11, 0, 0, 1, 0, 0, 0x00, 0x57 }.Concat(ipv6).ToArray()) },
            { LinkType.Loop, new byte[] { 0, 0, 0, 24 }.Concat(ipv6).ToArray() },
        };
        foreach (byte family in new byte[] { 24, 28, 30 })
        {
            data.Add(LinkType.Null, new byte[] { family, 0, 0, 0 }.Concat(ipv6).ToArray());
            data.Add(LinkType.Null, new byte[] { 0, 0, 0, family }.Concat(ipv6).ToArray());
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(LinkLayers))]
    public void Every_link_layer_reaches_ipv6(LinkType linkType, byte[] frame)
    {
        var r = Dissect(frame, linkType);
        Assert.True(r.Has(FieldPresence.Ipv6Source), linkType.ToString());
        Assert.Equal((ushort)2222, r.UdpDestinationPort);
    }

    [Fact]
    public void Ipv4_link_type_reaches_six_in_four()
    {
        var r = Dissect(Ipv4(41, Ipv6(59, [])), LinkType.Ipv4);
        Assert.Equal(Encapsulation.SixInFour, r.Encapsulation);
    }

    [Fact]
    public void Pptp_enhanced_gre_carrying_ppp_carrying_ipv6_is_followed()
    {
        // Version 1, key present (payload length + call id), sequence present, PPP protocol type.
        var ppp = new byte[] { 0xFF, 0x03, 0x00, 0x57 }.Concat(Ipv6(17, Udp(7, 8, []))).ToArray();
        var gre = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(gre, 0x3001);
        BinaryPrimitives.WriteUInt16BigEndian(gre.AsSpan(2), 0x880B);
        var r = Dissect(Ethernet(0x0800, Ipv4(47, gre.Concat(ppp).ToArray())));
        Assert.Equal(Encapsulation.Gre, r.Encapsulation);
        Assert.Equal((ushort)8, r.UdpDestinationPort);
    }

    [Fact]
    public void Erspan_type_two_carrying_ipv6_is_followed()
    {
        var gre = new byte[8];
        BinaryPrimitives.WriteUInt16BigEndian(gre, 0x1000); // sequence present marks ERSPAN II
        BinaryPrimitives.WriteUInt16BigEndian(gre.AsSpan(2), 0x88BE);
        var erspan = new byte[8];
        var inner = Ethernet(0x86DD, Ipv6(6, Tcp(1, 2, 0x002)));
        var r = Dissect(Ethernet(0x86DD, Ipv6(47, gre.Concat(erspan).Concat(inner).ToArray())));
        Assert.Equal(2, r.Ipv6HeaderCount);
        Assert.Equal(6, r.FlowProtocol);
        Assert.Equal((ushort)0x002, r.TcpFlags);
    }

    [Fact]
    public void L2tp_carrying_ppp_carrying_ipv6_is_followed()
    {
        var l2tp = new byte[] { 0x00, 0x02, 0x00, 0x01, 0x00, 0x02, 0xFF, 0x03, 0x00, 0x57 };
        var r = Dissect(Ethernet(0x0800, Ipv4(17, Udp(1701, 1701, l2tp.Concat(Ipv6(59, [])).ToArray()))));
        Assert.Equal(Encapsulation.L2tp, r.Encapsulation);
        Assert.True(r.Has(FieldPresence.Ipv6Source));
    }

    [Fact]
    public void Esp_stops_dissection_and_ah_continues()
    {
        var esp = Dissect(Ethernet(0x86DD, Ipv6(50, [0, 0, 1, 0, 9, 9, 9, 9])));
        Assert.Equal(0x100u, esp.EspSpi);
        Assert.Equal(50, esp.FlowProtocol);

        var ah = new byte[12];
        ah[0] = 6;
        ah[1] = 1; // (1 + 2) * 4 = 12 bytes
        BinaryPrimitives.WriteUInt32BigEndian(ah.AsSpan(4), 0xABCD);
        var r = Dissect(Ethernet(0x86DD, Ipv6(51, ah.Concat(Tcp(22, 2222, 0x018)).ToArray())));
        Assert.Equal(0xABCDu, r.AhSpi);
        Assert.Equal((ushort)22, r.TcpSourcePort);
        Assert.Equal(6, r.FlowProtocol);
    }

    [Fact]
    public void Overlong_extension_chain_is_cut_and_flagged()
    {
        byte[] payload = [];
        for (int i = 0; i < 40; i++)
        {
            payload = Extension(60, payload);
        }

        var r = Dissect(Ethernet(0x86DD, Ipv6(60, payload)));
        Assert.True((r.Anomalies & Anomaly.ExtensionChainTooLong) != 0);
    }

    [Fact]
    public void Deep_tunnel_nesting_is_cut_and_flagged()
    {
        var packet = Ipv6(59, []);
        for (int i = 0; i < 20; i++)
        {
            packet = Ipv6(41, packet);
        }

        var r = Dissect(Ethernet(0x86DD, packet));
        Assert.True((r.Anomalies & Anomaly.EncapsulationTooDeep) != 0);
    }

    [Fact]
    public void Dns_over_tcp_is_found_behind_its_length_prefix()
    {
        var query = DnsQuery("example.org", 28);
        var message = new byte[] { 0, (byte)query.Length }.Concat(query).ToArray();
        var r = Dissect(Ethernet(0x86DD, Ipv6(6, Tcp(50000, 53, 0x018, message))));
        Assert.True(r.Has(FieldPresence.Dns));
        Assert.Equal(DnsTransportKind.Dns, r.DnsTransport);
        Assert.Equal(query.Length, r.DnsLength);
    }

    [Fact]
    public void Ethernet_padding_is_not_part_of_the_ipv6_payload()
    {
        var frame = Ethernet(0x86DD, Ipv6(17, Udp(53, 53, []))).Concat(new byte[20]).ToArray();
        var r = Dissect(frame);
        Assert.False(r.Has(FieldPresence.Dns)); // the empty UDP payload ends before the padding
        Assert.Equal(Anomaly.None, r.Anomalies);
    }

    [Fact]
    public void Dissecting_does_not_allocate()
    {
        var frame = Ethernet(0x86DD, Ipv6(17, Udp(53, 40000, DnsAaaaResponse("www.example.com", 0, Source, Destination))));
        var r = new PacketRecord();
        for (int i = 0; i < 100; i++)
        {
            r.Reset();
            PacketDissector.Dissect(frame, LinkType.Ethernet, ref r);
        }

        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (int i = 0; i < 100_000; i++)
            {
                r.Reset();
                PacketDissector.Dissect(frame, LinkType.Ethernet, ref r);
            }
        }));
        Assert.True(r.Has(FieldPresence.Dns));
    }
}

using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Packets.Text;

/// <summary>Receives survey6's own record, field by field, in the order documented in docs/records.md.</summary>
public interface IRecordFieldSink
{
    void Number(string name, long value, bool present);

    void Text(string name, ReadOnlySpan<char> value, bool present);

    void Address(string name, Ipv6Address value, bool present);

    void Boolean(string name, bool value, bool present);
}

/// <summary>The one definition of survey6's record columns, shared by the TSV and JSON Lines writers.</summary>
public static class RecordFields
{
    public static readonly string[] Names =
    [
        "frame", "time_epoch_ns", "frame_len", "cap_len", "link_type", "path", "encapsulation", "ipv6_headers", "vlan_id",
        "ipv4_src", "ipv4_dst", "src", "dst", "next_header", "hop_limit", "flow_label", "traffic_class", "payload_length",
        "ext_chain", "frag_offset", "frag_more", "frag_id", "routing_type", "segments_left", "mobility_type", "ah_spi", "esp_spi",
        "flow_src", "flow_dst", "flow_protocol", "flow_src_port", "flow_dst_port",
        "flow_tcp_flags", "flow_tcp_seq", "flow_tcp_ack", "flow_tcp_window", "flow_icmpv6_type", "flow_icmpv6_code", "flow_data_len",
        "flow_dns", "flow_quote",
        "src_type", "src_iid", "dst_type", "dst_iid", "tcp_flags", "icmpv6_type", "icmpv6_code", "nd_target", "ra_prefixes",
        "dns_transport", "dns_response", "dns_qname", "dns_qtype", "dns_rcode", "dns_aaaa", "anomalies",
    ];

    public static void Visit<TSink>(in PacketRecord r, ref TSink sink)
        where TSink : struct, IRecordFieldSink
    {
        var p = r.Present;
        Span<char> scratch = stackalloc char[2048];
        sink.Number("frame", r.FrameNumber, true);
        sink.Number("time_epoch_ns", r.TimestampNanoseconds, r.HasTimestamp);
        sink.Number("frame_len", r.FrameLength, true);
        sink.Number("cap_len", r.CapturedLength, true);
        sink.Number("link_type", (ushort)r.LinkType, true);
        sink.Text("path", scratch[..WritePath(r, scratch)], r.PathLength > 0);
        sink.Text("encapsulation", ProtocolNames.Encapsulation(r.Encapsulation), r.HasIpv6);
        sink.Number("ipv6_headers", r.Ipv6HeaderCount, true);
        sink.Number("vlan_id", r.VlanId, r.VlanCount > 0);
        bool v4 = (p & FieldPresence.Ipv4Header) != 0;
        sink.Text("ipv4_src", v4 ? FormatIpv4(r.Ipv4Source, scratch) : default, v4);
        sink.Text("ipv4_dst", v4 ? FormatIpv4(r.Ipv4Destination, scratch) : default, v4);
        sink.Address("src", r.Ipv6Source, (p & FieldPresence.Ipv6Source) != 0);
        sink.Address("dst", r.Ipv6Destination, (p & FieldPresence.Ipv6Destination) != 0);
        sink.Number("next_header", r.Ipv6NextHeader, (p & FieldPresence.Ipv6NextHeader) != 0);
        sink.Number("hop_limit", r.Ipv6HopLimit, (p & FieldPresence.Ipv6HopLimit) != 0);
        sink.Number("flow_label", r.Ipv6FlowLabel, (p & FieldPresence.Ipv6FlowLabel) != 0);
        sink.Number("traffic_class", r.Ipv6TrafficClass, (p & FieldPresence.Ipv6TrafficClass) != 0);
        sink.Number("payload_length", r.Ipv6PayloadLength, (p & FieldPresence.Ipv6PayloadLength) != 0);
        sink.Text("ext_chain", scratch[..WriteChain(r, scratch)], r.ExtensionCount > 0);
        bool fragment = (p & FieldPresence.Fragment) != 0;
        sink.Number("frag_offset", r.FragmentOffset, fragment);
        sink.Boolean("frag_more", r.FragmentMore, fragment);
        sink.Number("frag_id", r.FragmentId, fragment);
        bool routing = (p & FieldPresence.Routing) != 0;
        sink.Number("routing_type", r.RoutingType, routing);
        sink.Number("segments_left", r.SegmentsLeft, routing);
        sink.Number("mobility_type", r.MobilityType, (p & FieldPresence.MobilityType) != 0);
        sink.Number("ah_spi", r.AhSpi, (p & FieldPresence.AhSpi) != 0);
        sink.Number("esp_spi", r.EspSpi, (p & FieldPresence.EspSpi) != 0);

        bool flow = (p & FieldPresence.Flow) != 0;
        sink.Address("flow_src", r.FlowSource, flow);
        sink.Address("flow_dst", r.FlowDestination, flow);
        sink.Number("flow_protocol", r.FlowProtocol, flow);
        bool ports = flow && r.FlowProtocol is PacketDissector.ProtocolTcp or PacketDissector.ProtocolUdp && (r.FlowSourcePort | r.FlowDestinationPort) != 0;
        sink.Number("flow_src_port", r.FlowSourcePort, ports);
        sink.Number("flow_dst_port", r.FlowDestinationPort, ports);
        bool tcp = flow && (p & FieldPresence.FlowTcp) != 0;
        sink.Number("flow_tcp_flags", r.FlowTcpFlags, tcp);
        sink.Number("flow_tcp_seq", r.FlowTcpSequence, tcp);
        sink.Number("flow_tcp_ack", r.FlowTcpAcknowledgement, tcp);
        sink.Number("flow_tcp_window", r.FlowTcpWindow, tcp);
        bool icmpv6 = flow && (p & FieldPresence.FlowIcmpv6) != 0;
        sink.Number("flow_icmpv6_type", r.FlowIcmpv6Type, icmpv6);
        sink.Number("flow_icmpv6_code", r.FlowIcmpv6Code, icmpv6);
        bool udp = flow && (p & FieldPresence.FlowUdp) != 0;
        sink.Number("flow_data_len", r.FlowDataLength, tcp || udp || icmpv6);
        sink.Boolean("flow_dns", (p & FieldPresence.FlowDns) != 0, tcp || udp);
        sink.Boolean("flow_quote", (p & FieldPresence.FlowQuote) != 0, icmpv6);
        var source = flow ? Ipv6AddressClassifier.Classify(r.FlowSource) : default;
        var destination = flow ? Ipv6AddressClassifier.Classify(r.FlowDestination) : default;
        sink.Text("src_type", flow ? Ipv6AddressClassifier.TypeName(source.Type) : default, flow);
        sink.Text("src_iid", flow ? Ipv6AddressClassifier.IidName(source.IidClass) : default, flow && source.IidClass != IidClass.None);
        sink.Text("dst_type", flow ? Ipv6AddressClassifier.TypeName(destination.Type) : default, flow);
        sink.Text("dst_iid", flow ? Ipv6AddressClassifier.IidName(destination.IidClass) : default, flow && destination.IidClass != IidClass.None);
        sink.Number("tcp_flags", r.TcpFlags, (p & FieldPresence.TcpFlags) != 0);
        sink.Number("icmpv6_type", r.Icmpv6Type, (p & FieldPresence.Icmpv6Type) != 0);
        sink.Number("icmpv6_code", r.Icmpv6Code, (p & FieldPresence.Icmpv6Code) != 0);
        sink.Address("nd_target", r.NdTarget, (p & FieldPresence.NdTarget) != 0);
        sink.Text("ra_prefixes", scratch[..WritePrefixes(r, scratch)], r.AdvertisedPrefixCount > 0);

        bool dns = (p & FieldPresence.Dns) != 0;
        ref readonly var d = ref r.Dns;
        sink.Text("dns_transport", ProtocolNames.DnsTransport(r.DnsTransport), dns);
        sink.Boolean("dns_response", d.IsResponse, dns && d.HeaderComplete);
        sink.Text("dns_qname", scratch[..(dns && d.HasQuestion ? d.CopyQueryName(scratch) : 0)], dns && d.HasQuestion);
        sink.Number("dns_qtype", d.QueryType, dns && d.HasQuestion);
        sink.Number("dns_rcode", d.Rcode, dns && d.HeaderComplete && d.IsResponse);
        sink.Text("dns_aaaa", scratch[..(dns ? WriteAaaa(d, scratch) : 0)], dns && d.AaaaCount > 0);
        sink.Text("anomalies", scratch[..ProtocolNames.WriteAnomalies(r.Anomalies, scratch)], r.Anomalies != Anomaly.None);
    }

    private static int WritePath(in PacketRecord r, Span<char> destination)
    {
        int n = 0;
        for (int i = 0; i < r.PathLength; i++)
        {
            if (i > 0)
            {
                destination[n++] = ':';
            }

            var name = ProtocolNames.Layer(r.LayerAt(i));
            name.CopyTo(destination[n..]);
            n += name.Length;
        }

        return n;
    }

    private static int WriteChain(in PacketRecord r, Span<char> destination)
    {
        int n = 0;
        for (int i = 0; i < r.ExtensionCount; i++)
        {
            if (i > 0)
            {
                destination[n++] = ',';
            }

            r.ExtensionAt(i).TryFormat(destination[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
            n += written;
        }

        return n;
    }

    private static int WritePrefixes(in PacketRecord r, Span<char> destination)
    {
        int n = 0;
        for (int i = 0; i < r.AdvertisedPrefixCount; i++)
        {
            if (i > 0)
            {
                destination[n++] = ',';
            }

            n += r.PrefixAt(i).Format(destination[n..]);
            destination[n++] = '/';
            r.PrefixLengthAt(i).TryFormat(destination[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
            n += written;
        }

        return n;
    }

    private static int WriteAaaa(in DnsInfo d, Span<char> destination)
    {
        int n = 0;
        int stored = d.StoredAaaaCount;
        for (int i = 0; i < stored && n + 48 < destination.Length; i++)
        {
            if (i > 0)
            {
                destination[n++] = ',';
            }

            n += d.GetAaaa(i).Format(destination[n..]);
        }

        return n;
    }

    private static ReadOnlySpan<char> FormatIpv4(uint address, Span<char> scratch)
    {
        // The scratch tail is free while the path and chain are written into its head.
        var tail = scratch[^16..];
        int n = 0;
        for (int shift = 24; shift >= 0; shift -= 8)
        {
            ((address >> shift) & 0xFF).TryFormat(tail[n..], out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
            n += written;
            if (shift > 0)
            {
                tail[n++] = '.';
            }
        }

        return tail[..n];
    }
}

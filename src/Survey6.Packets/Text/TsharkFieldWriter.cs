using Survey6.Packets.Dissection;

namespace Survey6.Packets.Text;

/// <summary>
/// Prints records exactly as <c>tshark -T fields -E header=y -E separator=/t -E occurrence=f</c> prints
/// <see cref="Fields"/>: tshark's value formats, an empty cell for a field that was not dissected.
/// </summary>
public static class TsharkFieldWriter
{
    /// <summary>
    /// Dissect with these to print what tshark prints with its default preferences: Teredo only on port 3544
    /// (tshark's Teredo heuristic is off unless <c>-o teredo.heuristic_teredo:TRUE</c>).
    /// </summary>
    public const DissectorOptions Options = DissectorOptions.None;

    public static readonly string[] Fields =
    [
        "frame.number", "frame.time_epoch", "frame.len", "frame.cap_len",
        "ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.hlim", "ipv6.flow", "ipv6.tclass",
        "tcp.srcport", "tcp.dstport", "tcp.flags", "udp.srcport", "udp.dstport",
        "icmpv6.type", "icmpv6.code", "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.aaaa",
    ];

    public static void WriteHeader(Utf8LineWriter w)
    {
        for (int i = 0; i < Fields.Length; i++)
        {
            if (i > 0)
            {
                w.Tab();
            }

            w.Write(Fields[i].AsSpan());
        }

        w.NewLine();
    }

    public static void WriteRow(Utf8LineWriter w, in PacketRecord r)
    {
        w.WriteDecimal(r.FrameNumber);
        w.Tab();
        if (r.HasTimestamp)
        {
            w.WriteEpochNanoseconds(r.TimestampNanoseconds);
        }

        w.Tab();
        w.WriteDecimal((ulong)r.FrameLength);
        w.Tab();
        w.WriteDecimal((ulong)r.CapturedLength);
        w.Tab();

        var p = r.Present;
        if ((p & FieldPresence.Ipv6Source) != 0)
        {
            w.WriteIpv6(r.Ipv6Source);
        }

        w.Tab();
        if ((p & FieldPresence.Ipv6Destination) != 0)
        {
            w.WriteIpv6(r.Ipv6Destination);
        }

        w.Tab();
        if ((p & FieldPresence.Ipv6NextHeader) != 0)
        {
            w.WriteDecimal((ulong)r.Ipv6NextHeader);
        }

        w.Tab();
        if ((p & FieldPresence.Ipv6HopLimit) != 0)
        {
            w.WriteDecimal((ulong)r.Ipv6HopLimit);
        }

        w.Tab();
        if ((p & FieldPresence.Ipv6FlowLabel) != 0)
        {
            w.WriteHex(r.Ipv6FlowLabel, 6);
        }

        w.Tab();
        if ((p & FieldPresence.Ipv6TrafficClass) != 0)
        {
            w.WriteHex(r.Ipv6TrafficClass, 8);
        }

        w.Tab();
        WritePort(w, p, FieldPresence.TcpSourcePort, r.TcpSourcePort);
        WritePort(w, p, FieldPresence.TcpDestinationPort, r.TcpDestinationPort);
        if ((p & FieldPresence.TcpFlags) != 0)
        {
            w.WriteHex(r.TcpFlags, 4);
        }

        w.Tab();
        WritePort(w, p, FieldPresence.UdpSourcePort, r.UdpSourcePort);
        WritePort(w, p, FieldPresence.UdpDestinationPort, r.UdpDestinationPort);
        if ((p & FieldPresence.Icmpv6Type) != 0)
        {
            w.WriteDecimal((ulong)r.Icmpv6Type);
        }

        w.Tab();
        if ((p & FieldPresence.Icmpv6Code) != 0)
        {
            w.WriteDecimal((ulong)r.Icmpv6Code);
        }

        w.Tab();
        WriteDns(w, r);
        w.NewLine();
    }

    private static void WritePort(Utf8LineWriter w, FieldPresence present, FieldPresence field, ushort port)
    {
        if ((present & field) != 0)
        {
            w.WriteDecimal((ulong)port);
        }

        w.Tab();
    }

    private static void WriteDns(Utf8LineWriter w, in PacketRecord r)
    {
        bool dns = (r.Present & FieldPresence.Dns) != 0;
        ref readonly var d = ref r.Dns;
        if (dns && d.HasQuestion)
        {
            w.Write(d.QueryNameUtf8);
        }

        w.Tab();
        if (dns && d.HasQuestion)
        {
            w.WriteDecimal((ulong)d.QueryType);
        }

        w.Tab();

        // tshark shows the response code only on responses, as soon as the flags word is captured.
        if (dns && d.HeaderBytes >= 4 && d.IsResponse)
        {
            w.WriteDecimal((ulong)d.Rcode);
        }

        w.Tab();
        if (dns && d.AaaaCount > 0)
        {
            w.WriteIpv6(d.GetAaaa(0));
        }
    }
}

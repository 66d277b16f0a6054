using System.Buffers.Binary;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

/// <summary>
/// Dissects one frame into a reused <see cref="PacketRecord"/>. Never throws on bad data and never allocates:
/// every read is preceded by a length check, and whatever was fully captured before a problem is kept.
/// </summary>
/// <remarks>
/// Offsets are absolute positions in the frame; <c>end</c> is where the current protocol's bytes stop
/// (the captured length, or less when a length field says so, e.g. IPv6 payload length vs Ethernet padding).
/// One file per layer: PacketDissector.Link.cs, .Ipv4.cs, .Ipv6.cs, .Transport.cs, .Tunnels.cs, .Icmpv6.cs.
/// </remarks>
public static partial class PacketDissector
{
    /// <summary>Nested IP headers (tunnels, ICMPv6 quotes) followed before giving up.</summary>
    public const int MaxEncapsulationDepth = 6;

    /// <summary>Extension headers followed per IPv6 header before giving up.</summary>
    public const int MaxExtensionHeaders = 16;

    /// <summary>Stacked 802.1Q/802.1ad tags accepted.</summary>
    public const int MaxVlanTags = 8;

    // Next-header / protocol numbers.
    public const byte HopByHop = 0;
    public const byte ProtocolIcmp = 1;
    public const byte ProtocolIpv4 = 4;
    public const byte ProtocolTcp = 6;
    public const byte ProtocolUdp = 17;
    public const byte ProtocolIpv6 = 41;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte ProtocolGre = 47;
    public const byte Esp = 50;
    public const byte Ah = 51;
    public const byte ProtocolIcmpv6 = 58;
    public const byte NoNextHeader = 59;
    public const byte DestinationOptions = 60;
    public const byte MobilityOld = 62;
    public const byte Mobility = 135;

    /// <summary>Dissects a frame of the given link type with <see cref="DissectorOptions.Default"/>.</summary>
    public static void Dissect(ReadOnlySpan<byte> frame, LinkType linkType, ref PacketRecord r) =>
        Dissect(frame, linkType, ref r, DissectorOptions.Default);

    /// <summary>Dissects a frame of the given link type. The caller resets the record first and fills the frame-level fields.</summary>
    public static void Dissect(ReadOnlySpan<byte> frame, LinkType linkType, ref PacketRecord r, DissectorOptions options)
    {
        r.Options = options;
        switch (linkType)
        {
            case LinkType.Ethernet:
                DissectEthernet(frame, 0, ref r, 0, Encapsulation.Native);
                break;
            case LinkType.LinuxSll:
                r.Push(Layer.LinuxSll);
                if (frame.Length < SllHeaderLength)
                {
                    r.Anomalies |= Anomaly.TruncatedLinkHeader;
                    return;
                }

                DispatchEtherType(frame, SllHeaderLength, BinaryPrimitives.ReadUInt16BigEndian(frame[SllProtocolOffset..]), ref r, 0, Encapsulation.Native);
                break;
            case LinkType.LinuxSll2:
                r.Push(Layer.LinuxSll2);
                if (frame.Length < Sll2HeaderLength)
                {
                    r.Anomalies |= Anomaly.TruncatedLinkHeader;
                    return;
                }

                DispatchEtherType(frame, Sll2HeaderLength, BinaryPrimitives.ReadUInt16BigEndian(frame[Sll2ProtocolOffset..]), ref r, 0, Encapsulation.Native);
                break;
            case LinkType.Raw:
                r.Push(Layer.RawIp);
                DissectRawIp(frame, 0, ref r, 0, Encapsulation.Native);
                break;
            case LinkType.Ipv4:
                DissectIpv4(frame, 0, frame.Length, ref r, 0, Encapsulation.Native);
                break;
            case LinkType.Ipv6:
                DissectIpv6(frame, 0, frame.Length, ref r, 0, Encapsulation.Native, quoted: false);
                break;
            case LinkType.Null:
            case LinkType.Loop:
                DissectLoopback(frame, linkType, ref r);
                break;
            case LinkType.Ppp:
                DissectPpp(frame, 0, ref r, 0, Encapsulation.Native);
                break;
            default:
                r.Anomalies |= Anomaly.UnsupportedLinkType;
                break;
        }
    }
}

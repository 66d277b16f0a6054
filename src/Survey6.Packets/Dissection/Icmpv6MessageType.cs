namespace Survey6.Packets.Dissection;

/// <summary>ICMPv6 message types survey6 names or dissects (RFC 4443 2.1: errors below 128, informational from 128).</summary>
public static class Icmpv6MessageType
{
    public const byte DestinationUnreachable = 1;   // RFC 4443 3.1
    public const byte PacketTooBig = 2;             // RFC 4443 3.2
    public const byte TimeExceeded = 3;             // RFC 4443 3.3
    public const byte ParameterProblem = 4;         // RFC 4443 3.4
    public const byte EchoRequest = 128;            // RFC 4443 4.1
    public const byte EchoReply = 129;              // RFC 4443 4.2
    public const byte MulticastListenerQuery = 130; // RFC 2710 3
    public const byte MulticastListenerReport = 131; // RFC 2710 3
    public const byte MulticastListenerDone = 132;  // RFC 2710 3
    public const byte RouterSolicitation = 133;     // RFC 4861 4.1
    public const byte RouterAdvertisement = 134;    // RFC 4861 4.2
    public const byte NeighborSolicitation = 135;   // RFC 4861 4.3
    public const byte NeighborAdvertisement = 136;  // RFC 4861 4.4
    public const byte Redirect = 137;               // RFC 4861 4.5
    public const byte RouterRenumbering = 138;      // RFC 2894 3
    public const byte Version2MulticastListenerReport = 143; // RFC 3810 5.2
}

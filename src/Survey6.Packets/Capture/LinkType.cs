namespace Survey6.Packets.Capture;

/// <summary>LINKTYPE_* values from the tcpdump.org registry that survey6 dissects.</summary>
public enum LinkType : ushort
{
    Null = 0,
    Ethernet = 1,
    Ppp = 9,
    Raw = 101,
    Loop = 108,
    LinuxSll = 113,
    Ipv4 = 228,
    Ipv6 = 229,
    LinuxSll2 = 276,
}

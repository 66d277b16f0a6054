namespace Survey6.Packets.Addresses;

/// <summary>Interface-identifier (low 64 bits) pattern, after addr6's IID types.</summary>
public enum IidClass : byte
{
    /// <summary>Not a unicast address (unspecified or multicast), so there is no IID to judge.</summary>
    None = 0,

    /// <summary>Modified EUI-64 from a MAC: ff:fe in IID bytes 3-4 (addr6 "ieee-derived").</summary>
    Eui64,

    /// <summary>ISATAP: 00-00-5e-fe or 02-00-5e-fe followed by an IPv4 address (RFC 5214).</summary>
    Isatap,

    /// <summary>High 32 bits zero and the low 32 bits an IPv4 address in binary, e.g. ::c000:201.</summary>
    EmbeddedIpv4_32,

    /// <summary>Each of the four hextets is one IPv4 octet written in decimal digits, e.g. ::192:0:2:1.</summary>
    EmbeddedIpv4_64,

    /// <summary>A well-known service port in the last (or, reversed, the second-last) hextet, e.g. ::443 or ::80:1.</summary>
    EmbeddedPort,

    /// <summary>All zero except the last hextet and the low byte of the one before it, e.g. ::1 or ::2:1.</summary>
    LowByte,

    /// <summary>More than two zero bytes in the IID (addr6 "pattern-bytes").</summary>
    BytePattern,

    /// <summary>None of the above: an opaque, temporary or otherwise random-looking IID.</summary>
    Randomized,

    /// <summary>A Teredo address, whose low 64 bits are flags, port and client address rather than an IID.</summary>
    Teredo,
}

namespace Survey6.Packets.Addresses;

/// <summary>
/// Address type, following the unicast subtypes of SI6 Networks' addr6 (with Unspecified and Multicast as
/// addr6's top-level types) plus the documentation prefixes, which addr6 folds into "global".
/// </summary>
public enum Ipv6AddressType : byte
{
    /// <summary>:: (RFC 4291 2.5.2).</summary>
    Unspecified = 0,

    /// <summary>::1 (RFC 4291 2.5.3).</summary>
    Loopback,

    /// <summary>::ffff:0:0/96 (RFC 4291 2.5.5.2).</summary>
    Ipv4Mapped,

    /// <summary>::/96 other than :: and ::1 (RFC 4291 2.5.5.1, deprecated).</summary>
    Ipv4Compatible,

    /// <summary>fe80::/10 (RFC 4291 2.5.6).</summary>
    LinkLocal,

    /// <summary>fec0::/10 (RFC 3879, deprecated).</summary>
    SiteLocal,

    /// <summary>fc00::/7 (RFC 4193).</summary>
    UniqueLocal,

    /// <summary>ff00::/8 (RFC 4291 2.7).</summary>
    Multicast,

    /// <summary>2002::/16 (RFC 3056).</summary>
    SixToFour,

    /// <summary>2001::/32 (RFC 4380), and the pre-RFC 3ffe:831f::/32 that addr6 also accepts.</summary>
    Teredo,

    /// <summary>2001:db8::/32 (RFC 3849) and 3fff::/20 (RFC 9637).</summary>
    Documentation,

    /// <summary>Everything else, including reserved space such as ::/8 outside the prefixes above (as addr6 does).</summary>
    GlobalUnicast,
}

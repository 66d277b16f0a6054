namespace Survey6.Packets.Addresses;

/// <summary>
/// What <see cref="Ipv6AddressClassifier.Classify"/> learned about one address. A value type so that
/// classifying on the packet path allocates nothing.
/// </summary>
public readonly record struct Ipv6AddressInfo
{
    public Ipv6AddressType Type { get; init; }

    /// <summary>Scope of a multicast address; <see cref="MulticastScope.None"/> for every other type.</summary>
    public MulticastScope MulticastScope { get; init; }

    /// <summary>Interface-identifier pattern; <see cref="IidClass.None"/> exactly when the address is not unicast.</summary>
    public IidClass IidClass { get; init; }

    /// <summary>
    /// The IPv4 address carried by the address, host order: the 6to4 prefix's, the Teredo client's, the mapped or
    /// compatible one, or the one in an ISATAP or embedded-IPv4 IID. A 6to4 prefix wins over an IID.
    /// </summary>
    public uint EmbeddedIpv4 { get; init; }

    public bool HasEmbeddedIpv4 { get; init; }

    /// <summary>Teredo server IPv4 (bits 32-63), host order.</summary>
    public uint TeredoServer { get; init; }

    /// <summary>Teredo client public IPv4, de-obfuscated (low 32 bits XOR 0xffffffff), host order.</summary>
    public uint TeredoClient { get; init; }

    /// <summary>Teredo client public UDP port, de-obfuscated (hextet 5 XOR 0xffff).</summary>
    public ushort TeredoPort { get; init; }

    /// <summary>48-bit MAC recovered from a modified EUI-64 IID, with the U/L bit flipped back.</summary>
    public ulong Mac { get; init; }

    public bool HasMac { get; init; }

    /// <summary>The recovered MAC is universally administered (its U/L bit is 0, i.e. the IID's is 1).</summary>
    public bool MacUniversal { get; init; }

    /// <summary>Service port found in an <see cref="IidClass.EmbeddedPort"/> IID, as a port number; 0 otherwise.</summary>
    public ushort EmbeddedPort { get; init; }

    /// <summary>The port sat in hextet 6 with a low byte after it (addr6 "port-rev") rather than in hextet 7.</summary>
    public bool EmbeddedPortReversed { get; init; }

    public bool IsUnicast => Type is not (Ipv6AddressType.Unspecified or Ipv6AddressType.Multicast);
}

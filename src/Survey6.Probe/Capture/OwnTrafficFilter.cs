using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Survey6.Probe.Capture;

/// <summary>
/// BPF for the probe's own traffic with its C&amp;C, and how it is taken out of the filter in force:
/// <c>(FILTER) and not (OWN)</c>. OWN matches TCP segments to and from each address of the C&amp;C at its port, and
/// for an IPv6 address also the same segments carried in 6in4 (IPv4 protocol 41, any IPv4 header length) and in
/// Teredo (IPv6 straight after the UDP header, any port): on a host whose IPv6 goes through such a tunnel a capture
/// on <c>any</c> sees the tunnel's outer packets too, which the default filter takes.
/// </summary>
public static class OwnTrafficFilter
{
    /// <summary>The filter in force with <paramref name="ownTraffic"/> taken out; <paramref name="filter"/> itself when there is nothing to take out.</summary>
    public static string Compose(string filter, string? ownTraffic) =>
        string.IsNullOrEmpty(ownTraffic) ? filter : $"({filter}) and not ({ownTraffic})";

    /// <summary>
    /// Matches TCP to or from <paramref name="port"/> of any of <paramref name="addresses"/>, in both directions; null
    /// when there is no address.
    /// </summary>
    public static string? Expression(IEnumerable<IPAddress> addresses, int port)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var terms = new List<string>();
        Span<byte> bytes = stackalloc byte[16];
        foreach (var address in addresses)
        {
            var literal = address.ToString();
            terms.Add(Invariant($"(src host {literal} and tcp src port {port}) or (dst host {literal} and tcp dst port {port})"));
            if (address.AddressFamily == AddressFamily.InterNetworkV6)
            {
                address.TryWriteBytes(bytes, out _);
                terms.Add(SixInFour(bytes, port));
                terms.Add(Teredo(bytes, port));
            }
        }

        return terms.Count == 0 ? null : string.Join(" or ", terms);
    }

    /// <summary>The address as BPF can name it: IPv4-mapped IPv6 as IPv4, without a scope (BPF has none).</summary>
    public static IPAddress Normalise(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
            return address.MapToIPv4();
        return address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0 ? new IPAddress(address.GetAddressBytes()) : address;
    }

    // RFC 4213 section 3.5: the IPv6 packet follows the IPv4 header, whose length is its IHL field times four.
    // The inner header: next header at 6, source at 8, destination at 24, then the TCP ports at 40 and 42.
    private static string SixInFour(ReadOnlySpan<byte> address, int port)
    {
        const string Inner = "(ip[0]&15)*4";
        return Invariant($"(ip proto 41 and ip[{Inner}+6] = 6 and (({Words("ip", Inner + "+", 8, address)} and ip[{Inner}+40:2] = {port}) or ({Words("ip", Inner + "+", 24, address)} and ip[{Inner}+42:2] = {port})))");
    }

    // RFC 4380 section 5.1.1: a Teredo data packet is the IPv6 packet as the UDP payload (offset 8 of the UDP header).
    private static string Teredo(ReadOnlySpan<byte> address, int port) =>
        Invariant($"(ip and udp and udp[14] = 6 and (({Words("udp", "", 16, address)} and udp[48:2] = {port}) or ({Words("udp", "", 32, address)} and udp[50:2] = {port})))");

    private static string Words(string protocol, string offsetPrefix, int offset, ReadOnlySpan<byte> address)
    {
        var text = new StringBuilder();
        for (var i = 0; i < 4; i++)
        {
            if (i > 0)
                text.Append(" and ");
            var word = BinaryPrimitives.ReadUInt32BigEndian(address[(i * 4)..]);
            text.Append(CultureInfo.InvariantCulture, $"{protocol}[{offsetPrefix}{offset + (i * 4)}:4] = 0x{word:x8}");
        }

        return text.ToString();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DuckDB.NET.Data;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// SQL functions over address text, registered on every DuckDB connection of the aggregator and of
/// <c>survey6 query</c>. They reuse the packet core's classifier and formatter, so the lake and the records agree.
/// Text that is not an IPv6 address gives NULL, never an error.
/// </summary>
public static class Ipv6Functions
{
    public static void Register(DuckDBConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var pure = new ScalarFunctionOptions { IsPureFunction = true };

        // ipv6_prefix('2001:db8:1:2::1', 48) = '2001:db8:1::/48'
        connection.RegisterScalarFunction<string, int, string>("ipv6_prefix", (readers, writer, rows) =>
        {
            for (ulong i = 0; i < rows; i++)
            {
                if (readers[0].IsValid(i) && readers[1].IsValid(i) && TryParse(readers[0].GetValue<string>(i), out var a)
                    && readers[1].GetValue<int>(i) is var bits and >= 0 and <= 128)
                    writer.WriteValue(Prefix(a, bits), i);
                else
                    writer.WriteNull(i);
            }
        }, pure);

        // The IPv4 address an IPv6 address carries (6to4, Teredo client, ISATAP, mapped, embedded IID), else NULL.
        connection.RegisterScalarFunction<string, string>("ipv6_embedded_ipv4", (readers, writer, rows) =>
        {
            for (ulong i = 0; i < rows; i++)
            {
                if (readers[0].IsValid(i) && TryParse(readers[0].GetValue<string>(i), out var a)
                    && Ipv6AddressClassifier.Classify(a) is { HasEmbeddedIpv4: true } info)
                    writer.WriteValue(Ipv6AddressClassifier.FormatIpv4(info.EmbeddedIpv4), i);
                else
                    writer.WriteNull(i);
            }
        }, pure);

        // The MAC address of a modified EUI-64 interface identifier, else NULL.
        connection.RegisterScalarFunction<string, string>("ipv6_mac", (readers, writer, rows) =>
        {
            for (ulong i = 0; i < rows; i++)
            {
                if (readers[0].IsValid(i) && TryParse(readers[0].GetValue<string>(i), out var a)
                    && Ipv6AddressClassifier.Classify(a) is { HasMac: true } info)
                    writer.WriteValue(Ipv6AddressClassifier.FormatMac(info.Mac), i);
                else
                    writer.WriteNull(i);
            }
        }, pure);
    }

    /// <summary>The first <paramref name="bits"/> bits of <paramref name="address"/> in RFC 5952 text with the length, e.g. <c>2001:db8::/32</c>.</summary>
    public static string Prefix(Ipv6Address address, int bits)
    {
        ulong high = bits >= 64 ? address.High : bits == 0 ? 0 : address.High & (ulong.MaxValue << (64 - bits));
        ulong low = bits >= 128 ? address.Low : bits <= 64 ? 0 : address.Low & (ulong.MaxValue << (128 - bits));
        return new Ipv6Address(high, low) + "/" + bits.ToString(CultureInfo.InvariantCulture);
    }

    public static bool TryParse(string? text, out Ipv6Address address)
    {
        address = default;
        if (text is null || !IPAddress.TryParse(text, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            return false;
        Span<byte> bytes = stackalloc byte[16];
        ip.TryWriteBytes(bytes, out _);
        address = Ipv6Address.Read(bytes);
        return true;
    }

    /// <summary>A SQL CASE mapping an ICMPv6 type number to survey6's name for it (docs/datasets.md).</summary>
    public static string Icmpv6TypeNameSql(string column)
    {
        var cases = string.Concat(Enumerable.Range(0, 256)
            .Select(t => (t, name: ProtocolNames.Icmpv6Type((byte)t)))
            .Where(x => x.name.Contains('(', StringComparison.Ordinal))
            .Select(x => $" WHEN {x.t} THEN '{x.name}'"));
        return $"CASE {column}{cases} ELSE CAST({column} AS VARCHAR) END";
    }
}

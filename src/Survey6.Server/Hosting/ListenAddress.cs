using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace Survey6.Server.Hosting;

/// <summary>
/// A listen address as given in configuration or on the command line: <c>ADDR:PORT</c>,
/// <c>[V6ADDR]:PORT</c>, <c>localhost:PORT</c> or <c>*:PORT</c> (all addresses, IPv6 and IPv4).
/// Port 0 asks the system for a free port.
/// </summary>
public sealed record ListenAddress(IPAddress? Address, int Port)
{
    /// <summary>Listens on every address.</summary>
    public bool IsAny => Address is null;

    public static bool TryParse(string? text, [NotNullWhen(true)] out ListenAddress? listen)
    {
        listen = null;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            return false;
        var host = text[..colon];
        if (host is "*" or "+")
        {
            listen = new ListenAddress(null, port);
            return true;
        }

        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            // Kestrel cannot pick a free port for "localhost" (two sockets); IPv4 loopback can.
            listen = new ListenAddress(IPAddress.Loopback, port);
            return true;
        }

        if (host.StartsWith('[') && host.EndsWith(']'))
            host = host[1..^1];
        else if (host.Contains(':', StringComparison.Ordinal))
            return false; // an IPv6 address with a port needs brackets
        if (!IPAddress.TryParse(host, out var address))
            return false;
        listen = new ListenAddress(address, port);
        return true;
    }

    public static ListenAddress Parse(string? text, string what) =>
        TryParse(text, out var listen) ? listen
        : throw new FormatException($"{what}: '{text}' is not ADDR:PORT, [IPV6]:PORT, localhost:PORT or *:PORT");

    public override string ToString() =>
        Address is null ? $"*:{Port}" : new IPEndPoint(Address, Port).ToString();
}

using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Survey6.Probe.Tests;

/// <summary>
/// Traffic sender run inside a test's network namespace (<c>ip netns exec NS dotnet Survey6.Probe.Tests.dll ...</c>);
/// the test runner never calls it. Prints <c>SENT n</c> when done.
/// <list type="bullet">
/// <item><c>udp DST PORT COUNT SIZE</c>: datagrams (to an IPv6 or IPv4 address).</item>
/// <item><c>tcp DST PORT COUNT SIZE</c>: connections (to an IPv6 or IPv4 address), each sending SIZE bytes and closing.</item>
/// <item><c>6in4 DST4 SRC6 DST6 COUNT</c>: ICMPv6 echo requests in IPv4 protocol 41, sent through a raw socket.</item>
/// <item><c>teredo DST4 SRC6 DST6 COUNT [PORT]</c>: ICMPv6 echo requests in UDP to port 3544, or to PORT.</item>
/// </list>
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length < 5)
        {
            await Console.Error.WriteLineAsync("usage: udp|tcp DST6 PORT COUNT SIZE | 6in4|teredo DST4 SRC6 DST6 COUNT");
            return 2;
        }

        var count = int.Parse(args[4], CultureInfo.InvariantCulture);
        switch (args[0])
        {
            case "udp":
            {
                var destination = new IPEndPoint(IPAddress.Parse(args[1]), int.Parse(args[2], CultureInfo.InvariantCulture));
                count = int.Parse(args[3], CultureInfo.InvariantCulture);
                var payload = new byte[int.Parse(args[4], CultureInfo.InvariantCulture)];
                using var socket = new Socket(destination.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                for (var i = 0; i < count; i++)
                {
                    payload[0] = (byte)i;
                    await socket.SendToAsync(payload, destination);
                    await Task.Delay(2); // keep the receiver's ICMP rate limit and the capture queue relaxed
                }

                break;
            }

            case "tcp":
            {
                var destination = new IPEndPoint(IPAddress.Parse(args[1]), int.Parse(args[2], CultureInfo.InvariantCulture));
                count = int.Parse(args[3], CultureInfo.InvariantCulture);
                var payload = new byte[int.Parse(args[4], CultureInfo.InvariantCulture)];
                for (var i = 0; i < count; i++)
                {
                    using var client = new TcpClient(destination.AddressFamily);
                    await client.ConnectAsync(destination);
                    var stream = client.GetStream();
                    await stream.WriteAsync(payload);
                    client.Client.Shutdown(SocketShutdown.Send);
                    // Wait for the server's close, so every segment has been exchanged when we report.
                    var sink = new byte[256];
                    while (await stream.ReadAsync(sink) > 0)
                    {
                    }
                }

                break;
            }

            case "6in4":
            case "teredo":
            {
                var destination = IPAddress.Parse(args[1]);
                var source6 = IPAddress.Parse(args[2]);
                var destination6 = IPAddress.Parse(args[3]);
                // .NET refuses raw sockets for protocol 41, so 6in4 goes through IPPROTO_RAW with our own
                // IPv4 header (the kernel fills in source, length, id and checksum).
                var sixInFour = args[0] == "6in4";
                using var socket = sixInFour
                    ? new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Raw)
                    : new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                var endpoint = new IPEndPoint(destination, sixInFour ? 0 : args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 3544);
                for (var i = 0; i < count; i++)
                {
                    var inner = EchoRequest(source6, destination6, (ushort)(i + 1));
                    await socket.SendToAsync(sixInFour ? Ipv4(destination, 41, inner) : inner, endpoint);
                    await Task.Delay(2);
                }

                break;
            }

            default:
                await Console.Error.WriteLineAsync($"unknown command {args[0]}");
                return 2;
        }

        Console.WriteLine($"SENT {count}");
        return 0;
    }

    /// <summary>An IPv6 packet carrying an ICMPv6 echo request (id 0x5336) with a correct checksum.</summary>
    internal static byte[] EchoRequest(IPAddress source, IPAddress destination, ushort sequence)
    {
        const int payloadLength = 8 + 16;
        var packet = new byte[40 + payloadLength];
        packet[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), payloadLength);
        packet[6] = 58;
        packet[7] = 64;
        source.GetAddressBytes().CopyTo(packet, 8);
        destination.GetAddressBytes().CopyTo(packet, 24);
        var icmp = packet.AsSpan(40);
        icmp[0] = 128;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], 0x5336);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], sequence);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum(packet.AsSpan(8, 32), icmp));
        return packet;
    }

    /// <summary>An IPv4 header (left for the kernel to complete) in front of <paramref name="payload"/>.</summary>
    private static byte[] Ipv4(IPAddress destination, byte protocol, byte[] payload)
    {
        var packet = new byte[20 + payload.Length];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        packet[8] = 64;
        packet[9] = protocol;
        destination.GetAddressBytes().CopyTo(packet, 16);
        payload.CopyTo(packet, 20);
        return packet;
    }

    private static ushort Checksum(ReadOnlySpan<byte> addresses, ReadOnlySpan<byte> icmp)
    {
        uint sum = 0;
        for (var i = 0; i < addresses.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(addresses[i..]);
        sum += (uint)icmp.Length;
        sum += 58;
        for (var i = 0; i + 1 < icmp.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(icmp[i..]);
        if ((icmp.Length & 1) != 0)
            sum += (uint)(icmp[^1] << 8);
        while (sum > 0xFFFF)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}

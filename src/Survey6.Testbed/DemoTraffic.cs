using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Survey6.Testbed;

/// <summary>
/// The far end of the lab's traffic, on the server's address in this namespace: a UDP sink, a TCP sink that reads a
/// connection to its end and closes it, and a DNS responder that answers every AAAA query with one address.
/// </summary>
public sealed class DemoResponders : IAsyncDisposable
{
    public const int UdpPort = 9000;
    public const int TcpPort = 9001;
    public const int DnsPort = 53;

    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _sockets = [];
    private readonly List<Task> _loops = [];

    private DemoResponders()
    {
    }

    /// <summary>Queries answered so far.</summary>
    public int DnsAnswered => Volatile.Read(ref _dnsAnswered);

    private int _dnsAnswered;

    public static DemoResponders Start(string address)
    {
        var ip = IPAddress.Parse(address);
        var responders = new DemoResponders();
        try
        {
            var udp = responders.Bind(new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp), new IPEndPoint(ip, UdpPort));
            responders._loops.Add(responders.SinkUdpAsync(udp));
            var tcp = responders.Bind(new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp), new IPEndPoint(ip, TcpPort));
            tcp.Listen(64);
            responders._loops.Add(responders.AcceptAsync(tcp));
            var dns = responders.Bind(new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp), new IPEndPoint(ip, DnsPort));
            responders._loops.Add(responders.AnswerDnsAsync(dns));
        }
        catch
        {
            responders.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        return responders;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        foreach (var socket in _sockets)
            socket.Dispose();
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private Socket Bind(Socket socket, EndPoint endpoint)
    {
        _sockets.Add(socket);
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        socket.Bind(endpoint);
        return socket;
    }

    private async Task SinkUdpAsync(Socket socket)
    {
        var buffer = new byte[65536];
        while (!_stop.IsCancellationRequested)
            await socket.ReceiveAsync(buffer, _stop.Token).ConfigureAwait(false);
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            _ = DrainAsync(client);
        }
    }

    private async Task DrainAsync(Socket client)
    {
        using (client)
        {
            var buffer = new byte[16384];
            try
            {
                while (await client.ReceiveAsync(buffer, _stop.Token).ConfigureAwait(false) > 0)
                {
                }

                client.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
            }
        }
    }

    private async Task AnswerDnsAsync(Socket socket)
    {
        var buffer = new byte[1500];
        EndPoint any = new IPEndPoint(IPAddress.IPv6Any, 0);
        while (!_stop.IsCancellationRequested)
        {
            var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _stop.Token).ConfigureAwait(false);
            var answer = DnsMessages.Answer(buffer.AsSpan(0, received.ReceivedBytes));
            if (answer is null)
                continue;
            await socket.SendToAsync(answer, SocketFlags.None, received.RemoteEndPoint, _stop.Token).ConfigureAwait(false);
            Interlocked.Increment(ref _dnsAnswered);
        }
    }
}

/// <summary>Traffic of known composition from a lab host to the responders; every method returns what it sent.</summary>
public static class DemoSender
{
    /// <summary>UDP datagrams of <paramref name="size"/> bytes to <paramref name="port"/>, a little apart.</summary>
    public static async Task<int> UdpAsync(DemoHost host, string server, int port, int count, int size, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        using var socket = NamespaceSockets.Create(host.Namespace, SocketType.Dgram, ProtocolType.Udp);
        var destination = new IPEndPoint(IPAddress.Parse(server), port);
        var payload = new byte[size];
        for (var i = 0; i < count; i++)
        {
            payload[0] = (byte)i;
            await socket.SendToAsync(payload, SocketFlags.None, destination, cancellationToken).ConfigureAwait(false);
            await Task.Delay(2, cancellationToken).ConfigureAwait(false);
        }

        return count;
    }

    /// <summary>TCP connections, each sending <paramref name="size"/> bytes and waiting for the server's close.</summary>
    public static async Task<int> TcpAsync(DemoHost host, string server, int count, int size, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        var destination = new IPEndPoint(IPAddress.Parse(server), DemoResponders.TcpPort);
        var payload = new byte[size];
        var sink = new byte[256];
        for (var i = 0; i < count; i++)
        {
            using var socket = NamespaceSockets.Create(host.Namespace, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(destination, cancellationToken).ConfigureAwait(false);
            await socket.SendAsync(payload, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
            while (await socket.ReceiveAsync(sink, SocketFlags.None, cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }

        return count;
    }

    /// <summary>AAAA queries for <c>q{i}.{zone}</c>; returns the answers received (each waited for, up to 2 s).</summary>
    public static async Task<int> DnsAsync(DemoHost host, string server, string zone, int count, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        using var socket = NamespaceSockets.Create(host.Namespace, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(server), DemoResponders.DnsPort), cancellationToken).ConfigureAwait(false);
        var answers = 0;
        var buffer = new byte[1500];
        for (var i = 0; i < count; i++)
        {
            await socket.SendAsync(DnsMessages.Query((ushort)(i + 1), $"q{i}.{zone}"), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(TimeSpan.FromSeconds(2));
            try
            {
                if (await socket.ReceiveAsync(buffer, SocketFlags.None, wait.Token).ConfigureAwait(false) > 0)
                    answers++;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }

        return answers;
    }
}

/// <summary>The two DNS messages the lab needs: an AAAA query and its answer.</summary>
internal static class DnsMessages
{
    private static readonly byte[] AnswerAddress = IPAddress.Parse("2001:db8::53").GetAddressBytes();

    public static byte[] Query(ushort id, string name)
    {
        var message = new List<byte>(64);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        header[2] = 0x01; // RD
        header[5] = 1; // QDCOUNT
        message.AddRange(header.ToArray());
        foreach (var label in name.Split('.'))
        {
            message.Add((byte)label.Length);
            message.AddRange(Encoding.ASCII.GetBytes(label));
        }

        message.AddRange([0, 0, 28, 0, 1]); // root, QTYPE AAAA, QCLASS IN
        return [.. message];
    }

    /// <summary>The query turned into a response with one AAAA record (pointing at the question's name), or null.</summary>
    public static byte[]? Answer(ReadOnlySpan<byte> query)
    {
        if (query.Length < 17 || (query[2] & 0x80) != 0)
            return null;
        var answer = new byte[query.Length + 28];
        query.CopyTo(answer);
        answer[2] = 0x81; // QR, RD
        answer[3] = 0x80; // RA, NOERROR
        answer[7] = 1; // ANCOUNT
        var record = answer.AsSpan(query.Length);
        BinaryPrimitives.WriteUInt16BigEndian(record, 0xC00C); // name: pointer to the question
        BinaryPrimitives.WriteUInt16BigEndian(record[2..], 28);
        BinaryPrimitives.WriteUInt16BigEndian(record[4..], 1);
        BinaryPrimitives.WriteUInt32BigEndian(record[6..], 60);
        BinaryPrimitives.WriteUInt16BigEndian(record[10..], 16);
        AnswerAddress.CopyTo(record[12..]);
        return answer;
    }
}

using Survey6.Aggregator.Connections;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Tests.Connections;

/// <summary>
/// Writes TCP exchanges as a real stack would number them: each side's sequence number moves on by its data, SYN and
/// FIN, and every ACK acknowledges what the other side sent. <see cref="Lose"/> makes a segment the monitor never saw.
/// </summary>
internal sealed class TcpScript(long startNs = 1_700_000_000_000_000_000, ushort clientPort = 50000, ushort serverPort = 443)
{
    public static readonly Ipv6Address Client = Ipv6Address.Parse("2001:db8:1::10");
    public static readonly Ipv6Address Server = Ipv6Address.Parse("2001:db8:2::20");

    private uint _clientNext = 0xFFFF_FF00; // wraps during the exchange
    private uint _serverNext = 7000;
    private readonly long _start = startNs;
    private long _time = startNs;

    public List<ConnectionPacket> Packets { get; } = [];

    public long StepNs { get; set; } = 1_000_000;

    public TcpScript C(string flags, int data = 0, ushort window = 64000) => Send(fromClient: true, flags, data, window);

    public TcpScript S(string flags, int data = 0, ushort window = 64000) => Send(fromClient: false, flags, data, window);

    /// <summary>Sends again what the client sent <paramref name="back"/> octets ago (a retransmission).</summary>
    public TcpScript CAgain(int back, int data)
    {
        _clientNext -= (uint)back;
        Send(fromClient: true, "PA", data, 64000);
        _clientNext += (uint)(back - data);
        return this;
    }

    /// <summary>The client sends <paramref name="data"/> octets the monitor does not see.</summary>
    public TcpScript Lose(int data)
    {
        _clientNext += (uint)data;
        return this;
    }

    public TcpScript Wait(TimeSpan pause)
    {
        _time += pause.Ticks * 100;
        return this;
    }

    private TcpScript Send(bool fromClient, string flags, int data, ushort window)
    {
        ushort bits = 0;
        foreach (char f in flags)
        {
            bits |= f switch
            {
                'F' => 0x01,
                'S' => 0x02,
                'R' => 0x04,
                'P' => 0x08,
                'A' => 0x10,
                _ => throw new ArgumentException(flags),
            };
        }

        uint seq = fromClient ? _clientNext : _serverNext;
        uint ack = (bits & 0x10) != 0 ? (fromClient ? _serverNext : _clientNext) : 0;
        uint advance = (uint)data + ((bits & 0x02) != 0 ? 1u : 0) + ((bits & 0x01) != 0 ? 1u : 0);
        if ((bits & 0x04) == 0)
        {
            if (fromClient)
            {
                _clientNext += advance;
            }
            else
            {
                _serverNext += advance;
            }
        }

        Packets.Add(new ConnectionPacket(
            _time,
            fromClient ? Client : Server,
            fromClient ? Server : Client,
            ConnectionKey.Tcp,
            fromClient ? clientPort : serverPort,
            fromClient ? serverPort : clientPort,
            bits,
            seq,
            ack,
            window,
            (uint)data,
            (uint)(40 + 20 + data),
            Encapsulation.Native,
            Dns: false));
        _time += StepNs;
        return this;
    }

    public IReadOnlyList<Connection> Track(ConnectionOptions? options = null)
    {
        var tracker = new ConnectionTracker("probe-1", "capture-1", _start, options);
        foreach (var p in Packets)
        {
            tracker.Add(p);
        }

        return new ConnectionStitcher(options).Stitch(tracker.Drain());
    }

    public Connection Single(ConnectionOptions? options = null) => Assert.Single(Track(options));
}

using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Connections;

/// <summary>
/// What one tracker (one capture, or one probe-hour) knows of one connection: its state at the tracker's last packet, as
/// if the connection had started in this capture, plus, when it may continue one from an earlier capture, the packets
/// needed to replay it exactly from that connection's state.
/// </summary>
/// <remarks>
/// A connection can continue one from an earlier capture only if its first packet came within the idle timeout of the
/// tracker's window start (<see cref="HeadOpen"/>). For those, <see cref="Events"/> holds every packet of the key in
/// this capture up to the key's first idle gap, that is: this fragment's and those of the fragments the tracker split
/// off after it for state reasons (a new SYN after a close, an unanswered SYN timing out), which are marked
/// <see cref="Covered"/>. The stitcher, joining this fragment to an earlier one, replays the events from the earlier
/// state and drops the covered fragments; otherwise it takes every fragment as it is.
/// </remarks>
public sealed class ConnectionFragment
{
    private const byte FormatVersion = 1;

    internal ConnectionFragment(string probeId, string source, ConnectionState state, bool headOpen, bool covered, ConnectionEvent[]? events, bool tailOpen = true)
    {
        TailOpen = tailOpen;
        ProbeId = probeId;
        Source = source;
        State = state;
        HeadOpen = headOpen;
        Covered = covered;
        Events = events;
    }

    public string ProbeId { get; }

    /// <summary>The tracker's source label (the capture's SHA-256, say): covered fragments belong to the head of the same source.</summary>
    public string Source { get; }

    public ConnectionState State { get; }

    public ConnectionKey Key => State.Key;

    public long FirstTimestampNs => State.FirstTimestampNs;

    public long LastPacketNs => State.LastPacketNs;

    /// <summary>The first packet came within the idle timeout of the tracker's window start, so it may continue an earlier fragment.</summary>
    public bool HeadOpen { get; }

    /// <summary>Split off a head-open fragment for a state reason: its packets are in the head's <see cref="Events"/>.</summary>
    public bool Covered { get; }

    /// <summary>
    /// The key's last fragment in its input, with its last packet within the idle timeout of the input's end: a later
    /// input may continue it. Not stored in <see cref="ToBytes"/> (a fragment read back is taken to be open).
    /// </summary>
    public bool TailOpen { get; }

    /// <summary>For a head-open fragment, the key's packets in order up to its first idle gap; null otherwise.</summary>
    public ConnectionEvent[]? Events { get; }

    /// <summary>The connection as it stands in this fragment alone (what the stitcher gives when nothing joins it).</summary>
    public Connection ToConnection() => Connection.From(State, ProbeId);

    /// <summary>The fragment as bytes (a Parquet BLOB); <see cref="FromBytes"/> reads it back exactly.</summary>
    public byte[] ToBytes()
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(FormatVersion);
            w.Write(ProbeId);
            w.Write(Source);
            WriteKey(w, Key);
            w.Write(HeadOpen);
            w.Write(Covered);
            State.Write(w);
            w.Write(Events?.Length ?? -1);
            foreach (var e in Events ?? [])
            {
                w.Write(e.TimestampNs);
                w.Write(e.Sequence);
                w.Write(e.Acknowledgement);
                w.Write(e.DataLength);
                w.Write(e.IpBytes);
                w.Write(e.TcpFlags);
                w.Write(e.Window);
                w.Write((byte)((e.FromA ? 1 : 0) | (e.Dns ? 2 : 0)));
            }
        }

        return stream.ToArray();
    }

    /// <summary>Reads what <see cref="ToBytes"/> wrote; throws <see cref="InvalidDataException"/> on anything else.</summary>
    public static ConnectionFragment FromBytes(ReadOnlySpan<byte> bytes)
    {
        using var stream = new MemoryStream(bytes.ToArray(), writable: false);
        using var r = new BinaryReader(stream, System.Text.Encoding.UTF8);
        try
        {
            byte version = r.ReadByte();
            if (version != FormatVersion)
            {
                throw new InvalidDataException($"connection fragment format {version}; this version reads {FormatVersion}");
            }

            string probe = r.ReadString();
            string source = r.ReadString();
            var key = ReadKey(r);
            bool headOpen = r.ReadBoolean();
            bool covered = r.ReadBoolean();
            var state = ConnectionState.Read(r, key);
            int count = r.ReadInt32();
            ConnectionEvent[]? events = null;
            if (count >= 0)
            {
                events = new ConnectionEvent[count];
                for (int i = 0; i < count; i++)
                {
                    long ts = r.ReadInt64();
                    uint seq = r.ReadUInt32();
                    uint ack = r.ReadUInt32();
                    uint data = r.ReadUInt32();
                    uint ip = r.ReadUInt32();
                    ushort flags = r.ReadUInt16();
                    ushort window = r.ReadUInt16();
                    byte bits = r.ReadByte();
                    events[i] = new ConnectionEvent(ts, seq, ack, data, ip, flags, window, (bits & 1) != 0, (bits & 2) != 0);
                }
            }

            if (stream.Position != stream.Length)
            {
                throw new InvalidDataException("connection fragment has trailing bytes");
            }

            return new ConnectionFragment(probe, source, state, headOpen, covered, events);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("connection fragment is cut short", e);
        }
    }

    private static void WriteKey(BinaryWriter w, ConnectionKey key)
    {
        Span<byte> address = stackalloc byte[Ipv6Address.Length];
        key.AddressA.Write(address);
        w.Write(address);
        w.Write(key.PortA);
        key.AddressB.Write(address);
        w.Write(address);
        w.Write(key.PortB);
        w.Write(key.Protocol);
        w.Write((byte)key.Encapsulation);
        w.Write(key.OneWay);
    }

    private static ConnectionKey ReadKey(BinaryReader r)
    {
        var a = ReadAddress(r);
        ushort portA = r.ReadUInt16();
        var b = ReadAddress(r);
        ushort portB = r.ReadUInt16();
        return new ConnectionKey(a, portA, b, portB, r.ReadByte(), (Encapsulation)r.ReadByte(), r.ReadBoolean());
    }

    private static Ipv6Address ReadAddress(BinaryReader r)
    {
        var bytes = r.ReadBytes(Ipv6Address.Length);
        return bytes.Length == Ipv6Address.Length ? Ipv6Address.Read(bytes) : throw new EndOfStreamException();
    }
}

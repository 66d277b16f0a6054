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
    /// input may continue it. A fragment read back for stitching is taken to be open (the stitcher does not ask).
    /// </summary>
    public bool TailOpen { get; }

    /// <summary>For a head-open fragment, the key's packets in order up to its first idle gap; null otherwise.</summary>
    public ConnectionEvent[]? Events { get; }

    /// <summary>The connection as it stands in this fragment alone (what the stitcher gives when nothing joins it).</summary>
    public Connection ToConnection() => Connection.From(State, ProbeId);
}

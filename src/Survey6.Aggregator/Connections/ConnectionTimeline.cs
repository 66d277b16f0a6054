namespace Survey6.Aggregator.Connections;

/// <summary>
/// The packets of one key in order: which connection each belongs to (the idle timeout, a TCP close or unanswered SYN
/// timing out, a new SYN after a close) and that connection's state. The tracker and the stitcher's replay share it, so
/// a replay cannot drift from what the tracker does.
/// </summary>
internal struct ConnectionTimeline(ConnectionKey key, ConnectionOptions options, ConnectionState? current = null)
{
    public ConnectionState? Current { readonly get; private set; } = current;

    /// <summary>Adds <paramref name="e"/>; returns the connection it ended (an idle gap when <paramref name="idle"/>), if any.</summary>
    public ConnectionState? Add(in ConnectionEvent e, out bool idle)
    {
        idle = false;
        ConnectionState? ended = null;
        if (Current is { } state && state.EndsBefore(e, options))
        {
            idle = e.TimestampNs - state.LastPacketNs > options.IdleTimeoutNs(key.Protocol);
            ended = state;
            Current = null;
        }

        Current ??= ConnectionState.Start(key, e);
        Current.Apply(e);
        return ended;
    }
}

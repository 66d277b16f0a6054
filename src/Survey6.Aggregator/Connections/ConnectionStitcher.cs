namespace Survey6.Aggregator.Connections;

/// <summary>
/// Joins the fragments of several trackers (captures, probe-hours, runs) into connections: two fragments of the same key
/// and probe join when the later starts within the idle timeout of the earlier's last packet. The join replays the later
/// fragment's packets from the earlier's state, so the result equals what one tracker would give on the packets of all
/// the captures in order.
/// </summary>
public sealed class ConnectionStitcher
{
    private readonly ConnectionOptions _options;

    public ConnectionStitcher(ConnectionOptions? options = null)
    {
        _options = options ?? new ConnectionOptions();
        _options.Validate();
    }

    /// <summary>The connections the fragments make, ordered by first packet time then uid.</summary>
    public IReadOnlyList<Connection> Stitch(IEnumerable<ConnectionFragment> fragments)
    {
        ArgumentNullException.ThrowIfNull(fragments);
        var states = new List<(ConnectionState State, string Probe)>();
        var groups = fragments.GroupBy(f => (f.ProbeId, f.Key));
        foreach (var group in groups)
        {
            StitchKey(group.Key.ProbeId, group.Key.Key, group, states);
        }

        return states
            .Select(s => Connection.From(s.State, s.Probe))
            .OrderBy(c => c.TsNs)
            .ThenBy(c => c.Uid, StringComparer.Ordinal)
            .ToArray();
    }

    private void StitchKey(string probe, ConnectionKey key, IEnumerable<ConnectionFragment> group, List<(ConnectionState, string)> output)
    {
        long idleTimeout = _options.IdleTimeoutNs(key.Protocol);
        HashSet<string>? replayed = null;
        ConnectionState? current = null;
        foreach (var fragment in group.OrderBy(f => f.FirstTimestampNs).ThenBy(f => f.Covered))
        {
            if (fragment.Covered && replayed is not null && replayed.Contains(fragment.Source))
            {
                continue;
            }

            if (current is not null && fragment.Events is { } events && !fragment.Covered
                && fragment.FirstTimestampNs - current.LastPacketNs <= idleTimeout)
            {
                var timeline = new ConnectionTimeline(key, _options, current.Clone());
                foreach (var e in events)
                {
                    if (timeline.Add(e, out _) is { } ended)
                    {
                        output.Add((ended, probe));
                    }
                }

                current = timeline.Current;
                (replayed ??= new HashSet<string>(StringComparer.Ordinal)).Add(fragment.Source);
                continue;
            }

            if (current is not null)
            {
                output.Add((current, probe));
            }

            current = fragment.State;
        }

        if (current is not null)
        {
            output.Add((current, probe));
        }
    }
}

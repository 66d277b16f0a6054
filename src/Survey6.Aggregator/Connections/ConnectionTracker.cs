using System.Runtime.InteropServices;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Connections;

/// <summary>
/// Tracks the connections of one capture (or one probe-hour): fed every packet's flow view in capture order by
/// <see cref="Add(in PacketRecord)"/>, it gives its connection fragments at the end by <see cref="Drain"/>. Joining
/// the fragments of several captures is <see cref="ConnectionStitcher"/>'s job.
/// </summary>
/// <remarks>
/// State is a dictionary keyed by <see cref="ConnectionKey"/> (a struct): adding a packet of a known connection
/// allocates nothing, except that a connection which may continue one of an earlier capture (its first packet within
/// the idle timeout of <c>windowStartNs</c>) keeps its packets in a list for the stitcher's replay.
/// </remarks>
public sealed class ConnectionTracker
{
    private readonly string _probeId;
    private readonly string _source;
    private readonly long _windowStartNs;
    private readonly ConnectionOptions _options;
    // The open connections' table, taken from the last drained tracker: a capture's table grows to hundreds of
    // thousands of entries, and growing it again for every capture (copying and rehashing at each doubling) was a
    // tenth of the parse pass's allocation.
    private static Dictionary<ConnectionKey, Entry>? s_idleOpen;

    /// <summary>Drops the idle table (<see cref="Parse.ParseBuffers.Release"/>).</summary>
    internal static void ReleaseIdle() => Interlocked.Exchange(ref s_idleOpen, null);
    private Dictionary<ConnectionKey, Entry>? _open;

    // A table grown by an exceptional capture is not kept: about 80 MB at this size.
    private const int MaxIdleTableEntries = 1 << 20;
    private readonly List<ConnectionFragment> _done = [];

    /// <param name="probeId">The probe every packet came from.</param>
    /// <param name="source">A label for this tracker's input, unique among the fragments stitched together (the capture's SHA-256).</param>
    /// <param name="windowStartNs">
    /// Start of the time this input covers (the capture window's start, or its first packet's time): a connection can
    /// continue one from an earlier input only if its first packet comes within the idle timeout of it.
    /// </param>
    public ConnectionTracker(string probeId, string source, long windowStartNs, ConnectionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(probeId);
        ArgumentNullException.ThrowIfNull(source);
        _probeId = probeId;
        _source = source;
        _windowStartNs = windowStartNs;
        _options = options ?? new ConnectionOptions();
        _options.Validate();
    }

    /// <summary>Counts the frame if its flow view is a TCP, UDP or ICMPv6 packet (<see cref="ConnectionPacket.TryFrom"/>).</summary>
    public bool Add(in PacketRecord record)
    {
        if (!ConnectionPacket.TryFrom(record, out var packet))
        {
            return false;
        }

        Add(packet);
        return true;
    }

    /// <summary>Counts one packet; packets must come in capture order.</summary>
    public void Add(in ConnectionPacket packet)
    {
        var key = ConnectionKey.Of(packet, out bool fromA);
        var e = ConnectionEvent.Of(packet, fromA);
        _open ??= Interlocked.Exchange(ref s_idleOpen, null) ?? [];
        ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_open, key, out bool exists);
        if (!exists)
        {
            bool headOpen = packet.TimestampNs - _windowStartNs <= _options.IdleTimeoutNs(key.Protocol);
            entry = new Entry(new ConnectionTimeline(key, _options), headOpen);
        }

        var ended = entry!.Timeline.Add(e, out bool idle);
        if (ended is not null)
        {
            Finish(entry, ended, idle);
        }

        entry.Events?.Add(e);
    }

    /// <summary>
    /// Every connection seen, as fragments, in no particular order; the tracker starts empty again. Without
    /// <paramref name="inputEndNs"/> every key's last fragment is taken to be open at the tail (a later input may
    /// continue it); with it (the input's last packet time), only those whose last packet came within the idle timeout
    /// of it are.
    /// </summary>
    public IReadOnlyList<ConnectionFragment> Drain(long inputEndNs = long.MinValue)
    {
        if (_open is null)
        {
            return TakeFinished();
        }

        foreach (var entry in _open.Values)
        {
            if (entry.Timeline.Current is { } current)
            {
                bool tailOpen = inputEndNs == long.MinValue || inputEndNs - current.LastPacketNs <= _options.IdleTimeoutNs(current.Key.Protocol);
                Finish(entry, current, chainEnds: true, tailOpen);
            }
        }

        _open.Clear();
        if (_open.Capacity <= MaxIdleTableEntries)
        {
            Interlocked.Exchange(ref s_idleOpen, _open);
        }

        _open = null;
        return TakeFinished();
    }

    /// <summary>
    /// The fragments finished so far (a later packet of their key, or <see cref="Expire"/>, ended them); they are no
    /// longer held. A fragment finished before the end of the input is never open at the tail: the key's next
    /// fragment of the same input comes between it and any later input.
    /// </summary>
    public IReadOnlyList<ConnectionFragment> TakeFinished()
    {
        if (_done.Count == 0)
        {
            return [];
        }

        var fragments = _done.ToArray();
        _done.Clear();
        return fragments;
    }

    /// <summary>
    /// Finishes the connections idle for longer than their timeout plus <see cref="ReorderAllowanceNs"/> before
    /// <paramref name="nowNs"/> (the latest packet time seen), so that a long input holds only the connections that
    /// may still get packets. Exact as long as no packet comes more than the allowance before one already added.
    /// </summary>
    public void Expire(long nowNs)
    {
        if (_open is null)
        {
            return;
        }

        foreach (var (key, entry) in _open)
        {
            if (entry.Timeline.Current is { } current
                && nowNs - current.LastPacketNs > _options.IdleTimeoutNs(key.Protocol) + ReorderAllowanceNs)
            {
                Finish(entry, current, chainEnds: true, tailOpen: false);
                _open.Remove(key);
            }
        }
    }

    /// <summary>How far out of time order packets may come for <see cref="Expire"/> to stay exact: one minute.</summary>
    public const long ReorderAllowanceNs = 60_000_000_000;

    private void Finish(Entry entry, ConnectionState ended, bool chainEnds, bool tailOpen = false)
    {
        if (entry.Events is null)
        {
            _done.Add(new ConnectionFragment(_probeId, _source, ended, headOpen: false, covered: false, events: null, tailOpen));
            return;
        }

        entry.Chain.Add(ended);
        if (!chainEnds)
        {
            return;
        }

        // The first connection of the key carries the packets of the whole chain; the rest are covered by it.
        var events = entry.Events.ToArray();
        for (int i = 0; i < entry.Chain.Count; i++)
        {
            bool last = i == entry.Chain.Count - 1;
            _done.Add(new ConnectionFragment(_probeId, _source, entry.Chain[i], headOpen: i == 0, covered: i > 0, events: i == 0 ? events : null, tailOpen && last));
        }

        entry.Chain.Clear();
        entry.Events = null;
    }

    private sealed class Entry(ConnectionTimeline timeline, bool headOpen)
    {
        // A field, not a property: the timeline is a struct updated in place.
        public ConnectionTimeline Timeline = timeline;

        /// <summary>The key's packets since its first, while it may still continue an earlier capture's connection.</summary>
        public List<ConnectionEvent>? Events { get; set; } = headOpen ? [] : null;

        /// <summary>Connections of the key ended for state reasons while <see cref="Events"/> is kept.</summary>
        public List<ConnectionState> Chain => _chain ??= [];

        private List<ConnectionState>? _chain;
    }
}

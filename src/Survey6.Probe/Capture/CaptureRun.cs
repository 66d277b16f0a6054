using Survey6.Packets.Capture;

namespace Survey6.Probe.Capture;

/// <summary>One interface of a capture run, as the spool writes it into an IDB.</summary>
public sealed class ProbeInterface(int index, string name, LinkType linkType, int snapLength, string filter)
{
    /// <summary>Position in <see cref="CaptureRun.Interfaces"/>; also the IDB id in every file of the run.</summary>
    public int Index { get; } = index;

    public string Name { get; } = name;

    public string? Description { get; init; }

    public LinkType LinkType { get; } = linkType;

    public int SnapLength { get; } = snapLength;

    public string Filter { get; } = filter;

    public InterfaceCounters Counters { get; } = new();
}

/// <summary>
/// The interfaces opened together, from a start of capture to its stop (a suspend, a failure or the
/// end of the process). Spool files never span two runs.
/// </summary>
public sealed class CaptureRun(long id, DateTimeOffset startedAt, IReadOnlyList<ProbeInterface> interfaces, Action? refreshStatistics = null)
{
    public long Id { get; } = id;

    public DateTimeOffset StartedAt { get; } = startedAt;

    public IReadOnlyList<ProbeInterface> Interfaces { get; } = interfaces;

    /// <summary>Reads pcap_stats now, so that a file's window counters are current when it closes.</summary>
    public void RefreshStatistics() => refreshStatistics?.Invoke();

    public CounterSnapshot Totals()
    {
        var sum = default(CounterSnapshot);
        foreach (var i in Interfaces)
            sum += i.Counters.Snapshot();
        return sum;
    }
}

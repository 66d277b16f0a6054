using Survey6.Contracts.Manifests;
using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Parse;

/// <summary>
/// What the lake records about a capture besides its frames (the <c>captures</c> row, and the capture columns of its
/// packets rows), read without guessing from its <see cref="StoredCaptureManifest"/>:
/// <list type="bullet">
/// <item>labels and location: the server's (state.db when the capture arrived); for a manifest written before the
/// server stamped them, the probe manifest's, else the file's SHB metadata;</item>
/// <item>window, hostname, interface, filter, frame count and every drop kind: the probe's manifest; the window falls
/// back to the one the upload declared;</item>
/// <item>without a probe manifest (an upload that carried none), drops come from the file's own Interface Statistics
/// Blocks and the rest from its SHB metadata.</item>
/// </list>
/// </summary>
internal sealed record CaptureDescription
{
    public string? Hostname { get; init; }

    /// <summary><c>k=v;k=v</c> sorted by key; null when there are none.</summary>
    public string? Labels { get; init; }

    public ProbeLocation? Location { get; init; }

    public long? WindowStartNs { get; init; }

    public long? WindowEndNs { get; init; }

    public long? ReceivedAtNs { get; init; }

    public string? Interface { get; init; }

    public string? Filter { get; init; }

    public long? ManifestFrames { get; init; }

    public long? Received { get; init; }

    public long? KernelDropped { get; init; }

    public long? InterfaceDropped { get; init; }

    public long? QueueDropped { get; init; }

    public long? DiskDropped { get; init; }

    /// <summary><c>manifest</c> or <c>isb</c>; null when nothing says.</summary>
    public string? DropSource { get; init; }

    /// <param name="stored">The stored manifest; null when there is none or it could not be read.</param>
    /// <param name="section">The capture's first pcapng section, for its survey6 metadata.</param>
    /// <param name="statistics">Reads the file's ISB counters; called only when no probe manifest has them (they sit at the end of the file).</param>
    public static CaptureDescription From(StoredCaptureManifest? stored, CaptureSection? section, Func<IsbCounters?> statistics)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var comment in section?.Comments ?? [])
        {
            if (PcapngMetadata.TryParseComment(comment, out var key, out var value))
                metadata.TryAdd(key, value);
        }

        var probe = stored?.ProbeManifest;
        // Version 2 and later: the server's record of the probe decides, even when it has no labels or place.
        var serverStamped = stored is { Version: >= 2 };
        var labels = serverStamped ? stored!.Labels
            : probe?.Labels is { Count: > 0 } claimed ? claimed
            : PcapngMetadata.ParseLabels(metadata.GetValueOrDefault(PcapngMetadata.Labels));
        var location = serverStamped ? stored!.Location
            : ProbeLocation.FromPcapngText(probe?.Location ?? metadata.GetValueOrDefault(PcapngMetadata.Location));

        var description = new CaptureDescription
        {
            Hostname = probe?.Hostname ?? metadata.GetValueOrDefault(PcapngMetadata.Hostname),
            // Not FormatLabels: the server accepts ';' in values, and a lake column must take what the server stored.
            Labels = labels is { Count: > 0 } ? string.Join(';', labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) : null,
            Location = location,
            WindowStartNs = probe?.WindowStartNs ?? stored?.WindowStartNs
                ?? (PcapngMetadata.TryParseTimestamp(metadata.GetValueOrDefault(PcapngMetadata.CaptureStart), out var start) ? start : null),
            WindowEndNs = probe?.WindowEndNs ?? stored?.WindowEndNs,
            ReceivedAtNs = stored?.ReceivedAtNs,
            Interface = probe?.Interface,
            Filter = probe?.Filter,
            ManifestFrames = probe?.Frames,
        };
        if (probe is not null)
        {
            return description with
            {
                Received = probe.Received,
                KernelDropped = probe.Drops.Kernel,
                InterfaceDropped = probe.Drops.Interface,
                QueueDropped = probe.Drops.Queue,
                DiskDropped = probe.Drops.Disk,
                DropSource = "manifest",
            };
        }

        return statistics() is { } isb
            ? description with
            {
                Received = isb.Received,
                KernelDropped = isb.Kernel,
                InterfaceDropped = isb.Interface,
                QueueDropped = isb.Queue,
                DiskDropped = isb.Disk,
                DropSource = "isb",
            }
            : description;
    }
}

/// <summary>A capture's own counters: the last ISB of each interface, summed; a kind no ISB reports is null.</summary>
internal sealed record IsbCounters(long? Received, long? Kernel, long? Interface, long? Queue, long? Disk)
{
    /// <summary>Reads the file to its end for its statistics; null for a pcap file or one without any.</summary>
    public static IsbCounters? Read(string path)
    {
        using var scan = CaptureReader.Open(path);
        if (scan.Format != CaptureFileFormat.Pcapng)
            return null;
        while (scan.TryRead(out _))
        {
        }

        var last = new Dictionary<(int, int), InterfaceStatistics>();
        foreach (var isb in scan.Statistics)
            last[(isb.SectionIndex, isb.InterfaceId)] = isb;
        if (last.Count == 0)
            return null;
        var drops = last.Values.Select(s => PcapngMetadata.ParseDrops(PcapngMetadata.CommentValue(s, PcapngMetadata.Drops))).ToList();
        return new IsbCounters(
            Sum(last.Values.Select(s => s.InterfaceReceived)),
            Sum(last.Values.Select(s => s.OsDropped)),
            Sum(last.Values.Select(s => s.InterfaceDropped)),
            Sum(drops.Select(d => (ulong?)d?.Queue)),
            Sum(drops.Select(d => (ulong?)d?.Disk)));
    }

    private static long? Sum(IEnumerable<ulong?> values)
    {
        long? total = null;
        foreach (var v in values)
        {
            if (v is { } x)
                total = (total ?? 0) + (long)Math.Min(x, long.MaxValue / 4);
        }

        return total;
    }
}

using System.Globalization;
using Survey6.Packets.Capture;

namespace Survey6.Probe.Spool;

/// <summary>What <see cref="PcapngRepair.Repair"/> did to a file.</summary>
public enum RepairOutcome
{
    /// <summary>The file already ended with statistics for every interface: it was closed, only not renamed.</summary>
    AlreadyClosed,

    /// <summary>Cut to its last complete block and closed with statistics blocks that say so.</summary>
    Repaired,

    /// <summary>No complete section header and interface: nothing in it can be kept as a capture.</summary>
    Unrepairable,
}

public sealed record RepairResult(RepairOutcome Outcome, long GoodLength, long DiscardedBytes, long Frames, string? Problem);

/// <summary>
/// Makes a spool file that a crash left open (<c>.pcapng.partial</c>) a well-formed capture again:
/// <see cref="CaptureReader"/> finds the end of the last complete block, the torn rest is cut off,
/// and one ISB per interface is appended, counting the frames kept and carrying a
/// <c>survey6.repaired=...</c> comment; the window counters of a crashed process are lost, so the
/// pcap counters are left out (unknown), not written as zero.
/// </summary>
public static class PcapngRepair
{
    public static RepairResult Repair(string path)
    {
        var length = new FileInfo(path).Length;
        long goodLength;
        long frames = 0;
        long? first = null, last = null;
        long lastFrameOffset = -1;
        var perInterface = new Dictionary<int, long>();
        CaptureSection? section;
        List<(LinkType LinkType, uint SnapLength)> interfaces;
        List<InterfaceStatistics> statistics;
        CaptureError? error;
        using (var reader = CaptureReader.Open(path))
        {
            while (reader.TryRead(out var frame))
            {
                if (frame.Kind != FrameKind.Packet)
                    continue;
                frames++;
                perInterface[frame.InterfaceId] = perInterface.GetValueOrDefault(frame.InterfaceId) + 1;
                lastFrameOffset = frame.FileOffset;
                if (frame.HasTimestamp)
                {
                    first ??= frame.TimestampNanoseconds;
                    last = frame.TimestampNanoseconds;
                }
            }

            error = reader.Error;
            goodLength = error?.Offset ?? reader.Position;
            section = reader.Section;
            interfaces = [.. reader.Interfaces.Select(i => (i.LinkType, i.SnapLength))];
            statistics = [.. reader.Statistics];
        }

        if (section is null || interfaces.Count == 0)
            return new RepairResult(RepairOutcome.Unrepairable, goodLength, length - goodLength, 0, error?.Message ?? "no interface description");
        if (section.IsBigEndian)
            return new RepairResult(RepairOutcome.Unrepairable, goodLength, length - goodLength, 0, "big-endian section; the probe writes little-endian only");

        var closed = error is null && goodLength == length
            && Enumerable.Range(0, interfaces.Count).All(id => statistics.Any(s => s.InterfaceId == id && s.FileOffset > lastFrameOffset));
        if (closed)
            return new RepairResult(RepairOutcome.AlreadyClosed, length, 0, frames, null);

        var now = ProbeIdentity.UnixNanoseconds(DateTimeOffset.UtcNow);
        var note = PcapngMetadata.FormatComment(
            PcapngMetadata.Repaired,
            string.Create(CultureInfo.InvariantCulture,
                $"cut at offset {goodLength}, {length - goodLength} bytes of a torn block discarded; window counters lost in a crash"));
        var tail = EncodeStatistics(interfaces, Enumerable.Range(0, interfaces.Count).Select(id => (id, now, new PcapngInterfaceStatistics
        {
            StartTimeNanoseconds = first,
            EndTimeNanoseconds = last,
            UserDelivered = (ulong)perInterface.GetValueOrDefault(id),
            Comment = note,
        })));

        using (var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read))
        {
            file.SetLength(goodLength);
            file.Seek(goodLength, SeekOrigin.Begin);
            file.Write(tail);
            file.Flush(flushToDisk: true);
        }

        return new RepairResult(RepairOutcome.Repaired, goodLength, length - goodLength, frames, null);
    }

    /// <summary>
    /// ISBs as they would appear in a section with these interfaces, encoded by <see cref="PcapngWriter"/>
    /// (which always starts a section): the header it writes first is dropped, the blocks are position-independent.
    /// </summary>
    internal static byte[] EncodeStatistics(
        IReadOnlyList<(LinkType LinkType, uint SnapLength)> interfaces,
        IEnumerable<(int InterfaceId, long TimestampNanoseconds, PcapngInterfaceStatistics Statistics)> blocks)
    {
        using var buffer = new MemoryStream();
        using (var writer = new PcapngWriter(buffer, new PcapngSectionInfo(), leaveOpen: true))
        {
            foreach (var (linkType, snapLength) in interfaces)
                writer.AddInterface(new PcapngInterfaceInfo(linkType, snapLength));
            writer.Flush();
            var start = buffer.Length;
            foreach (var (id, timestamp, stats) in blocks)
                writer.WriteInterfaceStatistics(id, timestamp, stats);
            writer.Flush();
            return buffer.GetBuffer().AsSpan((int)start, (int)(buffer.Length - start)).ToArray();
        }
    }
}

using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Survey6.Contracts.Manifests;
using Survey6.Packets.Capture;
using CloseReason = Survey6.Probe.Capture.CloseReason;

namespace Survey6.Probe.Spool;

/// <summary>
/// Builds the <see cref="CaptureManifest"/> of a capture file by reading it back, so it describes exactly the bytes
/// that were hashed: survey6 metadata from the SHB, interfaces from the IDBs, counters from each interface's last ISB
/// (the probe writes one per interface when it closes a file, with the window's counters), frame count and first/last
/// frame time from the EPBs. The spool writes it beside each closed file; <c>survey6 probe upload FILE</c> builds one
/// for any capture it is given.
/// </summary>
public static class CaptureManifestBuilder
{
    /// <summary>Reads a closed capture file, hashing it on the way, and describes it.</summary>
    /// <param name="path">The file; pcap or pcapng.</param>
    /// <param name="sequence">Its spool sequence number; null for a file the spool did not write.</param>
    /// <param name="reason">Why the spool closed it; null for a file the spool did not write.</param>
    public static CaptureManifest Build(string path, long? sequence = null, CloseReason? reason = null)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        using var hashing = new HashingReadStream(file);
        long frames = 0;
        long? first = null, last = null;
        var perInterface = new Dictionary<int, long>();
        string? damage = null;
        CaptureSection? section;
        List<CaptureInterface> interfaces;
        List<InterfaceStatistics> statistics;
        using (var reader = CaptureReader.Open(hashing, leaveOpen: true))
        {
            while (reader.TryRead(out var frame))
            {
                if (frame.Kind != FrameKind.Packet)
                    continue;
                frames++;
                CollectionsMarshal.GetValueRefOrAddDefault(perInterface, frame.InterfaceId, out _)++;
                if (frame.HasTimestamp)
                {
                    first ??= frame.TimestampNanoseconds;
                    last = frame.TimestampNanoseconds;
                }
            }

            if (reader.Error is { } error)
                damage = $"offset {error.Offset}: {error.Message}";
            section = reader.Section;
            interfaces = [.. reader.Interfaces];
            statistics = [.. reader.Statistics];
        }

        var size = hashing.DrainAndCount();
        var sha = Convert.ToHexStringLower(hashing.Hash());

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var comment in section?.Comments ?? [])
        {
            if (PcapngMetadata.TryParseComment(comment, out var key, out var value))
                metadata.TryAdd(key, value);
        }

        // The last ISB of each interface holds the file's counters.
        var lastStats = new Dictionary<int, InterfaceStatistics>();
        foreach (var s in statistics)
            lastStats[s.InterfaceId] = s;
        var repaired = lastStats.Values.Any(s => PcapngMetadata.CommentValue(s, PcapngMetadata.Repaired) is not null);

        var described = interfaces.Select(i =>
        {
            lastStats.TryGetValue(i.Id, out var s);
            var drops = s is null ? null : PcapngMetadata.ParseDrops(PcapngMetadata.CommentValue(s, PcapngMetadata.Drops));
            return new ManifestInterface
            {
                Id = i.Id,
                Name = i.Name,
                LinkType = (int)i.LinkType,
                Snaplen = i.SnapLength,
                Filter = i.Filter,
                Frames = perInterface.GetValueOrDefault(i.Id),
                Received = (long?)s?.InterfaceReceived,
                KernelDropped = (long?)s?.OsDropped,
                InterfaceDropped = (long?)s?.InterfaceDropped,
                QueueDropped = drops?.Queue,
                DiskDropped = drops?.Disk,
            };
        }).ToList();

        var windowStart = lastStats.Values.Select(s => s.StartTimeNanoseconds).Where(t => t is not null).Min() ?? first;
        var windowEnd = lastStats.Values.Select(s => s.EndTimeNanoseconds).Where(t => t is not null).Max() ?? last;
        return new CaptureManifest
        {
            ManifestVersion = CaptureManifest.CurrentVersion,
            File = Path.GetFileName(path),
            Sha256 = sha,
            Size = size,
            Sequence = sequence,
            ProbeId = metadata.GetValueOrDefault(PcapngMetadata.ProbeId),
            Hostname = metadata.GetValueOrDefault(PcapngMetadata.Hostname),
            Version = metadata.GetValueOrDefault(PcapngMetadata.Version),
            Labels = PcapngMetadata.ParseLabels(metadata.GetValueOrDefault(PcapngMetadata.Labels)),
            Location = metadata.GetValueOrDefault(PcapngMetadata.Location),
            CaptureStartNs = metadata.TryGetValue(PcapngMetadata.CaptureStart, out var start) && PcapngMetadata.TryParseTimestamp(start, out var startNs) ? startNs : null,
            WindowStartNs = windowStart,
            WindowEndNs = windowEnd < windowStart ? windowStart : windowEnd,
            FirstFrameNs = first,
            LastFrameNs = last,
            Frames = frames,
            Interface = described.Count > 0 ? string.Join(',', described.Select(i => i.Name)) : null,
            Filter = described.Count > 0 ? described[0].Filter : null,
            Snaplen = described.Count > 0 ? described[0].Snaplen : null,
            Received = Sum(described.Select(i => i.Received)),
            Drops = new ManifestDrops
            {
                Kernel = Sum(described.Select(i => i.KernelDropped)),
                Interface = Sum(described.Select(i => i.InterfaceDropped)),
                Queue = Sum(described.Select(i => i.QueueDropped)),
                Disk = Sum(described.Select(i => i.DiskDropped)),
            },
            CloseReason = repaired ? ReasonName(CloseReason.Repaired) : reason is { } r ? ReasonName(r) : null,
            Repaired = repaired,
            Damage = damage,
            Interfaces = described,
        };
    }

    /// <summary>The manifest's <c>close_reason</c>: the reason's name in lower case, words joined by '-'.</summary>
    private static string ReasonName(CloseReason reason) => reason switch
    {
        CloseReason.DiskGuard => "disk-guard",
        _ => reason.ToString().ToLowerInvariant(),
    };

    /// <summary>Sum over interfaces, or null if any interface's count is unknown (or there is none).</summary>
    private static long? Sum(IEnumerable<long?> values)
    {
        long sum = 0;
        var any = false;
        foreach (var v in values)
        {
            if (v is null)
                return null;
            sum += v.Value;
            any = true;
        }

        return any ? sum : null;
    }

    /// <summary>Hashes everything read through it.</summary>
    private sealed class HashingReadStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => _length;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            _hash.AppendData(buffer[..n]);
            _length += n;
            return n;
        }

        /// <summary>Reads (and hashes) whatever the reader left, returns the total length.</summary>
        public long DrainAndCount()
        {
            var rest = new byte[64 * 1024];
            while (Read(rest) > 0)
            {
            }

            return _length;
        }

        public byte[] Hash() => _hash.GetHashAndReset();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}

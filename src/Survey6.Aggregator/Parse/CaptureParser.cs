using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Sources;
using Survey6.Aggregator.Storage;
using Survey6.Contracts.Manifests;
using Survey6.Data;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Parse;

/// <summary>How parsing one capture ended.</summary>
public enum ParseStatus
{
    Parsed,

    /// <summary>The file is not a capture or is damaged (<see cref="CaptureReader.Error"/>): retrying cannot help.</summary>
    Unreadable,

    /// <summary>Something that may pass (I/O error, missing file): worth a retry.</summary>
    Failed,
}

/// <summary>Outcome of <see cref="CaptureParser.ParseAsync"/>.</summary>
public sealed record ParseResult(ParseStatus Status, long Frames, string? PacketsPath, string? CapturesPath, string? Reason, string? ManifestProblem);

/// <summary>
/// Turns one stored capture into its <c>packets</c> file and its <c>captures</c> row, and, from the same dissection,
/// its connection fragments (<see cref="ConnectionPartials.ParsedFile"/>), which the aggregate stage takes as the
/// capture's <c>connections</c> partial without reading the capture again. All are written under hidden temp names
/// and renamed into place only when the whole capture was read (the fragments before the packets file, so a packets
/// file never lacks them), so a damaged capture or a crash leaves nothing visible, and parsing the same capture
/// again produces the same bytes.
/// </summary>
/// <param name="connections">The connection settings the fragments are tracked with (required: they name the fragments file).</param>
public sealed class CaptureParser(LakeLayout lake, int rowGroupSize, PrefixPreservingAnonymiser? anonymiser, ConnectionOptions connections)
{
    private readonly ConnectionOptions _connections = connections ?? throw new ArgumentNullException(nameof(connections));

    public async Task<ParseResult> ParseAsync(PendingCapture capture, string runId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(capture);
        var (manifest, manifestProblem) = LoadManifest(capture.ManifestPath);

        CaptureReader reader;
        try
        {
            reader = CaptureReader.Open(capture.CapturePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new ParseResult(ParseStatus.Failed, 0, null, null, "cannot open: " + e.Message, manifestProblem);
        }

        using (reader)
        {
            if (reader.Error is { } early)
                return Unreadable(early, manifestProblem);

            // The folder is named after the certificate's probe id; what the file or manifest claims never overrides it.
            var probeId = capture.ProbeId;
            var path = capture.CapturePath;
            CaptureDescription described;
            try
            {
                described = CaptureDescription.From(manifest, reader.Section, () => IsbCounters.Read(path));
            }
            catch (IOException e)
            {
                return new ParseResult(ParseStatus.Failed, 0, null, null, "cannot read its statistics: " + e.Message, manifestProblem);
            }

            var metadata = new PacketFileMetadata
            {
                Sha256 = capture.Sha256,
                ProbeId = probeId,
                Labels = described.Labels,
                Latitude = described.Location?.Latitude,
                Longitude = described.Location?.Longitude,
                Country = described.Location?.Country,
                City = described.Location?.City,
                WindowStartNs = described.WindowStartNs,
                WindowEndNs = described.WindowEndNs,
                InterfaceDropped = described.InterfaceDropped,
                OsDropped = described.KernelDropped,
            };

            var packetsPath = lake.PerCaptureFile(LakeLayout.Packets, capture.Date, probeId, capture.Sha256);
            Directory.CreateDirectory(Path.GetDirectoryName(packetsPath)!);
            var packetsTemp = LakeLayout.TempPathFor(packetsPath, runId);
            var fragmentsPath = ConnectionPartials.ParsedFile(lake, capture.Date, probeId, capture.Sha256, _connections);
            var fragmentsTemp = LakeLayout.TempPathFor(fragmentsPath, runId);
            Directory.CreateDirectory(Path.GetDirectoryName(fragmentsPath)!);
            using var anonymised = new AnonymisedAddresses(anonymiser);
            var pump = new FramePump(new ConnectionPass(probeId, capture.Sha256, described.WindowStartNs, _connections, anonymised));
            // Closed exactly once on every path below (its buffers go back for the next capture when it is).
            var fragments = ConnectionPartialWriter.OpenReusingBuffers(fragmentsTemp, anonymiser?.KeyId);
            bool fragmentsClosed = false;
            try
            {
                using (var stream = new FileStream(packetsTemp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.None))
                using (var writer = PacketParquetWriter.Create(stream, metadata, rowGroupSize, anonymiser))
                {
                    while (pump.Fill(reader, writer))
                    {
                        ct.ThrowIfCancellationRequested();
                        writer.FlushRowGroup();
                        fragments.Add(pump.Connections.TakeFinished());
                    }
                    if (reader.Error is { } damage)
                    {
                        writer.Dispose();
                        stream.Dispose();
                        File.Delete(packetsTemp);
                        fragmentsClosed = true;
                        fragments.Dispose();
                        File.Delete(fragmentsTemp);
                        return Unreadable(damage, manifestProblem);
                    }
                    writer.Complete();
                }
                fragments.Add(pump.Connections.Drain());
                fragments.Complete();
                fragmentsClosed = true;
                DurableFiles.Publish(fragmentsTemp, fragmentsPath);
                DurableFiles.Publish(packetsTemp, packetsPath);
            }
            catch
            {
                if (!fragmentsClosed)
                    fragments.Dispose();
                TryDelete(packetsTemp);
                TryDelete(fragmentsTemp);
                throw;
            }

            var row = new CaptureRow
            {
                Sha256 = capture.Sha256,
                ProbeId = probeId,
                // Relative to the data directory, so that the row holds wherever the directory is mounted.
                CapturePath = DataLayout.StoredCaptureName(probeId, capture.Date, capture.Sha256),
                SizeBytes = new FileInfo(capture.CapturePath).Length,
                Format = reader.Format == CaptureFileFormat.Pcapng ? "pcapng" : "pcap",
                Frames = pump.Frames,
                PacketFrames = pump.PacketFrames,
                Ipv6Frames = pump.Ipv6Frames,
                BytesOnWire = pump.BytesOnWire,
                FirstTimeNs = pump.FirstTimestamp <= pump.LastTimestamp ? pump.FirstTimestamp : null,
                LastTimeNs = pump.FirstTimestamp <= pump.LastTimestamp ? pump.LastTimestamp : null,
                WindowStartNs = described.WindowStartNs,
                WindowEndNs = described.WindowEndNs,
                ReceivedAtNs = described.ReceivedAtNs,
                Hostname = described.Hostname,
                Labels = described.Labels,
                Latitude = described.Location?.Latitude,
                Longitude = described.Location?.Longitude,
                Country = described.Location?.Country,
                City = described.Location?.City,
                Interface = described.Interface ?? FirstInterface(reader)?.Name,
                Filter = described.Filter ?? FirstInterface(reader)?.Filter,
                LinkTypes = pump.LinkTypes(),
                ManifestFrames = described.ManifestFrames,
                InterfaceReceived = described.Received,
                KernelDropped = described.KernelDropped,
                InterfaceDropped = described.InterfaceDropped,
                QueueDropped = described.QueueDropped,
                DiskDropped = described.DiskDropped,
                DropSource = described.DropSource,
                AnonymisationKeyId = anonymiser?.KeyId,
            };
            var capturesPath = lake.PerCaptureFile(LakeLayout.Captures, capture.Date, probeId, capture.Sha256);
            Directory.CreateDirectory(Path.GetDirectoryName(capturesPath)!);
            var capturesTemp = LakeLayout.TempPathFor(capturesPath, runId);
            try
            {
                await using (var stream = new FileStream(capturesTemp, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    await row.WriteAsync(stream, ct).ConfigureAwait(false);
                }
                DurableFiles.Publish(capturesTemp, capturesPath);
            }
            catch
            {
                TryDelete(capturesTemp);
                throw;
            }
            return new ParseResult(ParseStatus.Parsed, pump.Frames, packetsPath, capturesPath, null, manifestProblem);
        }
    }

    private static ParseResult Unreadable(CaptureError error, string? manifestProblem) =>
        new(ParseStatus.Unreadable, 0, null, null, $"unreadable capture at offset {error.Offset}: {error.Message}", manifestProblem);

    /// <summary>
    /// The stored manifest. One that cannot be read does not keep the capture out of the lake: it is parsed with what
    /// the file itself says, and the problem is recorded with the run.
    /// </summary>
    private static (StoredCaptureManifest? Manifest, string? Problem) LoadManifest(string? path)
    {
        if (path is null)
            return (null, "no manifest");
        try
        {
            var manifest = StoredCaptureManifest.Load(path);
            return (manifest, manifest.ProbeManifestProblem is { } problem ? "probe manifest ignored: " + problem : null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ManifestException)
        {
            return (null, "manifest ignored: " + e.Message);
        }
    }

    private static CaptureInterface? FirstInterface(CaptureReader reader) => reader.Interfaces.Count > 0 ? reader.Interfaces[0] : null;

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Left for the cleanup stage, which removes temp files.
        }
    }

    /// <summary>
    /// Connection tracking in the parse pass: the dissected records' flow views, anonymised when the packets are, go to
    /// one tracker for the capture. Its window start is the capture window's start, or the first packet's time when
    /// that is earlier or unknown (a connection may continue an earlier capture's only near it).
    /// </summary>
    private sealed class ConnectionPass(string probeId, string sha256, long? windowStartNs, ConnectionOptions options, AnonymisedAddresses anonymised)
    {
        private ConnectionTracker? _tracker;
        private long _last = long.MinValue;

        public void Add(in PacketRecord record)
        {
            if (!ConnectionPacket.TryFrom(record, out var packet))
                return;
            _tracker ??= new ConnectionTracker(probeId, sha256, Math.Min(windowStartNs ?? long.MaxValue, packet.TimestampNs), options);
            _last = Math.Max(_last, packet.TimestampNs);
            _tracker.Add(anonymised.Apply(packet));
        }

        /// <summary>The fragments finished so far, after finishing the connections that can get no more packets.</summary>
        public IReadOnlyList<ConnectionFragment> TakeFinished()
        {
            if (_tracker is null)
                return [];
            _tracker.Expire(_last);
            return _tracker.TakeFinished();
        }

        public IReadOnlyList<ConnectionFragment> Drain() => _tracker?.Drain(_last) ?? [];
    }

    /// <summary>Reads and dissects frames into the writer; synchronous because frames are spans into the reader's buffer.</summary>
    private sealed class FramePump(ConnectionPass connections)
    {
        public ConnectionPass Connections { get; } = connections;

        private PacketRecord _record;
        private readonly Dictionary<ushort, long> _linkTypes = [];

        public long Frames;
        public long PacketFrames;
        public long Ipv6Frames;
        public long BytesOnWire;
        public long FirstTimestamp = long.MaxValue;
        public long LastTimestamp = long.MinValue;

        /// <summary>Fills the writer's row group; true when it is full (flush, then call again), false at the end of the file.</summary>
        public bool Fill(CaptureReader reader, PacketParquetWriter writer)
        {
            while (!writer.IsFull)
            {
                if (!reader.TryRead(out var frame))
                    return false;
                FrameDissection.Dissect(frame, ++Frames, ref _record);
                writer.Add(_record, frame.Data);
                Connections.Add(_record);
                if (frame.Kind != FrameKind.Packet)
                    continue;
                PacketFrames++;
                BytesOnWire += frame.OriginalLength;
                if (_record.HasIpv6)
                    Ipv6Frames++;
                if (frame.HasTimestamp)
                {
                    FirstTimestamp = Math.Min(FirstTimestamp, frame.TimestampNanoseconds);
                    LastTimestamp = Math.Max(LastTimestamp, frame.TimestampNanoseconds);
                }
                ref long count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_linkTypes, (ushort)frame.LinkType, out _);
                count++;
            }
            return true;
        }

        public string? LinkTypes() => _linkTypes.Count == 0 ? null : string.Join(',', _linkTypes.Keys.Order().Select(k => ProtocolNames.LinkType((LinkType)k) + "(" + k + ")"));
    }
}

using System.Globalization;
using Microsoft.Extensions.Logging;
using Survey6.Contracts.Manifests;
using Survey6.Packets.Files;
using Survey6.Probe.Capture;
using Survey6.Probe.Diagnostics;

namespace Survey6.Probe.Spool;

/// <summary>A closed spool file waiting for upload, with its manifest beside it.</summary>
public sealed record SpoolFile(
    string Path,
    string ManifestPath,
    long Sequence,
    DateTimeOffset StartedAt,
    long Size,
    long ManifestSize,
    string Sha256,
    long Frames,
    long? FirstFrameNanoseconds,
    long? LastFrameNanoseconds)
{
    public string Name => System.IO.Path.GetFileName(Path);

    /// <summary>What the file and its manifest take in the spool.</summary>
    public long TotalBytes => Size + ManifestSize;

    /// <summary>The manifest as stored (sent verbatim in the upload header).</summary>
    public string ReadManifestJson() => File.ReadAllText(ManifestPath);
}

/// <summary>Where the spool stands, for status and heartbeats.</summary>
public sealed record SpoolSummary(
    int Files,
    long Bytes,
    DateTimeOffset? Oldest,
    long FreeDiskBytes,
    long EvictedFiles,
    long EvictedBytes,
    long EvictedFrames);

/// <summary>What start-up recovery found and did.</summary>
public sealed record SpoolRecovery(int Repaired, int AlreadyClosed, int Unrepairable, int ManifestsRebuilt, int OrphanManifestsRemoved);

/// <summary>
/// The spool on disk: closed files (<c>NAME.pcapng</c> + <c>NAME.manifest.json</c>), at most one open
/// <c>NAME.pcapng.partial</c>, and <c>sequence</c> (last file number used). Files leave the spool only
/// through <see cref="Complete"/> (the uploader, after the server acknowledged them) or the disk guard's
/// eviction, which is counted and reported.
/// </summary>
public sealed class SpoolDirectory
{
    private const string SequenceFile = "sequence";
    private const string DamagedDirectory = "damaged";

    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly SortedList<long, SpoolFile> _closed = [];
    private long _closedBytes;
    private long _lastSequence;
    private long _evictedFiles;
    private long _evictedBytes;
    private long _evictedFrames;

    public SpoolDirectory(string path, ILogger<SpoolDirectory> logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Root = System.IO.Path.GetFullPath(path);
        _logger = logger;
    }

    public string Root { get; }

    /// <summary>Raised after a file was closed and published with its manifest (on the writer's thread).</summary>
    public event Action<SpoolFile>? FileClosed;

    /// <summary>Raised after files left the spool (upload or eviction): a paused writer may find room.</summary>
    public event Action? SpaceFreed;

    /// <summary>Bytes of closed files and their manifests.</summary>
    public long ClosedBytes => Volatile.Read(ref _closedBytes); // read per frame by the disk guard: no lock

    /// <summary>Closed files, oldest first.</summary>
    public IReadOnlyList<SpoolFile> ClosedFiles()
    {
        lock (_gate)
            return [.. _closed.Values];
    }

    /// <summary>Free space of the file system the spool is on (what an unprivileged writer may use).</summary>
    public long FreeDiskBytes() => new DriveInfo(Root).AvailableFreeSpace;

    public SpoolSummary Summary()
    {
        lock (_gate)
        {
            return new SpoolSummary(
                _closed.Count,
                _closedBytes,
                _closed.Count == 0 ? null : _closed.Values[0].StartedAt,
                SafeFreeDiskBytes(),
                _evictedFiles,
                _evictedBytes,
                _evictedFrames);
        }
    }

    /// <summary>
    /// Start-up: creates the directory, repairs what a crash left open, rebuilds missing manifests,
    /// and loads the list of closed files. Call once, before the writer starts.
    /// </summary>
    public SpoolRecovery Recover()
    {
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        foreach (var temporary in Directory.EnumerateFiles(Root, "*.tmp"))
            File.Delete(temporary); // half-written manifests or sequence files: rewritten below when needed

        _lastSequence = ReadSequence();
        foreach (var path in Directory.EnumerateFiles(Root, "*" + SpoolFileName.CaptureExtension + "*"))
        {
            var name = System.IO.Path.GetFileName(path);
            if (name.EndsWith(SpoolFileName.PartialSuffix, StringComparison.Ordinal))
                name = name[..^SpoolFileName.PartialSuffix.Length];
            if (SpoolFileName.TryParse(name, out _, out var sequence))
                _lastSequence = Math.Max(_lastSequence, sequence);
        }

        int repaired = 0, alreadyClosed = 0, unrepairable = 0, rebuilt = 0, orphans = 0;
        foreach (var partial in Directory.EnumerateFiles(Root, "*" + SpoolFileName.CaptureExtension + SpoolFileName.PartialSuffix).Order(StringComparer.Ordinal).ToList())
        {
            switch (RecoverPartial(partial))
            {
                case RepairOutcome.Repaired:
                    repaired++;
                    break;
                case RepairOutcome.AlreadyClosed:
                    alreadyClosed++;
                    break;
                default:
                    unrepairable++;
                    break;
            }
        }

        foreach (var manifest in Directory.EnumerateFiles(Root, "*" + SpoolFileName.ManifestExtension).ToList())
        {
            var capture = manifest[..^SpoolFileName.ManifestExtension.Length] + SpoolFileName.CaptureExtension;
            if (!File.Exists(capture))
            {
                // Complete deletes the capture first: the upload was acknowledged, the manifest is left over.
                File.Delete(manifest);
                orphans++;
            }
        }

        foreach (var path in Directory.EnumerateFiles(Root, "*" + SpoolFileName.CaptureExtension).Order(StringComparer.Ordinal).ToList())
        {
            if (!SpoolFileName.TryParse(System.IO.Path.GetFileName(path), out var start, out var sequence))
                continue;
            var manifestPath = SpoolFileName.ManifestFor(path);
            var loaded = File.Exists(manifestPath) ? TryLoad(path, manifestPath, start, sequence) : null;
            if (loaded is null)
            {
                // Renamed, then the process died before the manifest was written (or a person damaged it).
                var manifest = CaptureManifestBuilder.Build(path, sequence, CloseReason.Unknown);
                WriteManifest(manifest, manifestPath);
                var name = System.IO.Path.GetFileName(path);
                ProbeLog.ManifestRebuilt(_logger, name);
                rebuilt++;
                loaded = Describe(path, manifestPath, sequence, start, manifest.Size, manifest);
            }

            Add(loaded);
        }

        WriteSequence(_lastSequence);
        lock (_gate)
            ProbeLog.SpoolOpened(_logger, Root, _closed.Count, _closedBytes, repaired);
        return new SpoolRecovery(repaired, alreadyClosed, unrepairable, rebuilt, orphans);
    }

    /// <summary>Deletes a file (and its manifest) once the server acknowledged it. False if it was already gone.</summary>
    public bool Complete(SpoolFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        bool known;
        lock (_gate)
        {
            known = _closed.Remove(file.Sequence);
            if (known)
                _closedBytes -= file.TotalBytes;
        }

        var existed = File.Exists(file.Path);
        File.Delete(file.Path);
        File.Delete(file.ManifestPath);
        SafeSyncDirectory();
        if (known || existed)
            SpaceFreed?.Invoke();
        return known || existed;
    }

    /// <summary>The next file's partial path; its sequence number is recorded first so it is never reused.</summary>
    internal (string PartialPath, long Sequence) NextFile(DateTimeOffset start)
    {
        long sequence;
        lock (_gate)
            sequence = ++_lastSequence;
        WriteSequence(sequence);
        var name = SpoolFileName.Capture(start, sequence);
        return (System.IO.Path.Combine(Root, name + SpoolFileName.PartialSuffix), sequence);
    }

    /// <summary>
    /// A closed, fsynced partial becomes a spool file: renamed, its manifest built from its bytes and
    /// written atomically, the directory synced, and listeners told.
    /// </summary>
    internal SpoolFile Publish(string partialPath, long sequence, CloseReason reason)
    {
        var path = partialPath[..^SpoolFileName.PartialSuffix.Length];
        File.Move(partialPath, path);
        DurableFiles.SyncDirectory(Root);
        var manifestPath = SpoolFileName.ManifestFor(path);
        var manifest = CaptureManifestBuilder.Build(path, sequence, reason);
        WriteManifest(manifest, manifestPath);
        if (!SpoolFileName.TryParse(System.IO.Path.GetFileName(path), out var start, out _))
            throw new ArgumentException($"{path} is not a spool file name", nameof(partialPath));
        var file = Describe(path, manifestPath, sequence, start, manifest.Size, manifest);
        Add(file);
        ProbeLog.FileClosed(_logger, file.Name, manifest.CloseReason ?? "", manifest.Frames, manifest.Size);
        FileClosed?.Invoke(file);
        return file;
    }

    /// <summary>Repairs a partial (see <see cref="PcapngRepair"/>) and publishes it; an unrepairable one goes to <c>damaged/</c>.</summary>
    internal RepairOutcome RecoverPartial(string partialPath)
    {
        var name = System.IO.Path.GetFileName(partialPath);
        var captureName = name[..^SpoolFileName.PartialSuffix.Length];
        if (!SpoolFileName.TryParse(captureName, out _, out var sequence))
            throw new ArgumentException($"{partialPath} is not a spool file name", nameof(partialPath));
        var result = PcapngRepair.Repair(partialPath);
        if (result.Outcome == RepairOutcome.Unrepairable)
        {
            // Kept, not deleted: nothing leaves the spool unacknowledged, even a file with no frames.
            var damaged = System.IO.Path.Combine(Root, DamagedDirectory);
            Directory.CreateDirectory(damaged);
            var destination = System.IO.Path.Combine(damaged, name);
            File.Move(partialPath, destination, overwrite: true);
            ProbeLog.FileUnrepairable(_logger, name, result.Problem ?? "", destination);
            return result.Outcome;
        }

        if (result.Outcome == RepairOutcome.Repaired)
            ProbeLog.FileRepaired(_logger, name, result.GoodLength, result.DiscardedBytes, result.Frames);
        Publish(partialPath, sequence, result.Outcome == RepairOutcome.Repaired ? CloseReason.Repaired : CloseReason.Unknown);
        return result.Outcome;
    }

    /// <summary>The disk guard's last resort under evict-oldest: removes the oldest closed file and counts it.</summary>
    internal SpoolFile? EvictOldest()
    {
        SpoolFile file;
        lock (_gate)
        {
            if (_closed.Count == 0)
                return null;
            file = _closed.Values[0];
            _closed.RemoveAt(0);
            _closedBytes -= file.TotalBytes;
            _evictedFiles++;
            _evictedBytes += file.TotalBytes;
            _evictedFrames += file.Frames;
        }

        File.Delete(file.Path);
        File.Delete(file.ManifestPath);
        return file;
    }

    private void Add(SpoolFile file)
    {
        lock (_gate)
        {
            if (_closed.TryAdd(file.Sequence, file))
                _closedBytes += file.TotalBytes;
        }
    }

    /// <summary>The spool file with what its manifest says; null when the manifest is not a valid one.</summary>
    private static SpoolFile? TryLoad(string path, string manifestPath, DateTimeOffset start, long sequence)
    {
        CaptureManifest manifest;
        try
        {
            manifest = CaptureManifest.Parse(File.ReadAllBytes(manifestPath));
        }
        catch (ManifestException)
        {
            return null;
        }

        return Describe(path, manifestPath, sequence, start, new FileInfo(path).Length, manifest);
    }

    /// <summary>A spool file of <paramref name="size"/> bytes as its manifest, written at <paramref name="manifestPath"/>, describes it.</summary>
    private static SpoolFile Describe(string path, string manifestPath, long sequence, DateTimeOffset start, long size, CaptureManifest manifest) =>
        new(path, manifestPath, sequence, start, size, new FileInfo(manifestPath).Length, manifest.Sha256,
            manifest.Frames, manifest.FirstFrameNs, manifest.LastFrameNs);

    private void WriteManifest(CaptureManifest manifest, string manifestPath)
    {
        DurableFiles.WriteAtomically(manifestPath, manifest.ToUtf8Json());
    }

    private long ReadSequence()
    {
        try
        {
            var text = File.ReadAllText(System.IO.Path.Combine(Root, SequenceFile)).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    // Not synced: if it is lost, the highest sequence among the files still there is used, and names
    // stay unique anyway because they start with the time.
    private void WriteSequence(long sequence)
    {
        var path = System.IO.Path.Combine(Root, SequenceFile);
        File.WriteAllText(path + ".tmp", sequence.ToString(CultureInfo.InvariantCulture) + "\n");
        File.Move(path + ".tmp", path, overwrite: true);
    }

    private long SafeFreeDiskBytes()
    {
        try
        {
            return FreeDiskBytes();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return -1;
        }
    }

    // The deletion happened; losing it in a power cut only means uploading the file again.
    private void SafeSyncDirectory() => DurableFiles.TrySyncDirectory(Root);
}

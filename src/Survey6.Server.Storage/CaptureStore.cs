using System.Buffers;
using System.IO.Enumeration;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Win32.SafeHandles;
using Survey6.Contracts;
using Survey6.Packets.Files;

namespace Survey6.Server.Storage;

/// <summary>
/// Durable, resumable, deduplicating storage of uploaded captures under one data directory (see docs/upload-store.md).
/// Transport-independent: an upload service calls <see cref="BeginAsync"/>, feeds the session's
/// <see cref="UploadSession.WriteAsync"/> and acknowledges only after <see cref="UploadSession.CompleteAsync"/> returns.
/// Thread-safe; one store instance per data directory and process.
/// </summary>
public sealed class CaptureStore
{
    // errno EWOULDBLOCK on Linux, and Windows' sharing violation: another process holds the part file's lock.
    private const int LockConflictLinux = 11;
    private const int LockConflictWindows = unchecked((int)0x80070020);
    private const int HashBufferSize = 1 << 20;
    private static readonly TimeSpan LockRetryDelay = TimeSpan.FromMilliseconds(50);

    private readonly long _maxCaptureBytes;
    private readonly long _probeQuotaBytes;
    private readonly long _maxManifestBytes;
    private readonly TimeSpan _sessionWaitTimeout;
    private readonly TimeSpan _abandonedUploadAge;
    private readonly int _maxPartialUploads;
    private readonly long _minFreeDiskBytes;
    private readonly TimeSpan _maxWindowAhead;
    private readonly TimeSpan _maxWindowAge;
    private readonly KeyedLock _locks = new();

    /// <summary>Opens (creating if needed) the store in <see cref="CaptureStoreOptions.DataDirectory"/>.</summary>
    /// <exception cref="OptionsValidationException">The options are invalid.</exception>
    /// <param name="options">Limits and the data directory.</param>
    /// <param name="sink">Takes each capture once it is durable (the ingest queue).</param>
    /// <param name="logger">Logs uploads, refusals and recovery.</param>
    /// <param name="timeProvider">The clock of <c>received_at</c> and abandoned uploads.</param>
    /// <param name="probes">What the server knows of each probe, stamped into every stored manifest; none without it.</param>
    public CaptureStore(IOptions<CaptureStoreOptions> options, ICaptureStoredSink sink, ILogger<CaptureStore>? logger = null, TimeProvider? timeProvider = null,
        IProbeAnnotations? probes = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sink);
        var value = options.Value;
        var validation = new CaptureStoreOptionsValidator().Validate(Options.DefaultName, value);
        if (validation.Failed)
            throw new OptionsValidationException(Options.DefaultName, typeof(CaptureStoreOptions), validation.Failures);

        // Copied so that later changes to the options object cannot bypass validation.
        _maxCaptureBytes = value.MaxCaptureBytes;
        _probeQuotaBytes = value.ProbeQuotaBytes;
        _maxManifestBytes = value.MaxManifestBytes;
        _sessionWaitTimeout = value.SessionWaitTimeout;
        _abandonedUploadAge = value.AbandonedUploadAge;
        _maxPartialUploads = value.MaxPartialUploadsPerProbe;
        _minFreeDiskBytes = value.MinFreeDiskBytes;
        _maxWindowAhead = value.MaxWindowAhead;
        _maxWindowAge = value.MaxWindowAge;
        Layout = new StorageLayout(value.DataDirectory);
        Sink = sink;
        Logger = logger ?? NullLogger<CaptureStore>.Instance;
        Time = timeProvider ?? TimeProvider.System;
        Probes = probes;
        // The data directory itself is owner-only when the store is the first to make it; its folders for captures
        // are 0750 so that an aggregator worker of the service's group may read them.
        SecureFiles.CreateOwnerOnlyDirectory(Layout.Root);
        DurableFile.CreateDirectory(Layout.Captures);
        DurableFile.CreateDirectory(Layout.Incoming);
    }

    /// <summary>Absolute path of the data directory.</summary>
    public string DataDirectory => Layout.Root;

    internal StorageLayout Layout { get; }

    internal ICaptureStoredSink Sink { get; }

    internal ILogger Logger { get; }

    internal TimeProvider Time { get; }

    internal IProbeAnnotations? Probes { get; }

    internal KeyedLock Locks => _locks;

    /// <summary>Called after each commit step; tests use it to stop at that point as a crash would.</summary>
    internal Action<CommitStep>? StepHook { get; set; }

    /// <summary>
    /// Whether <paramref name="probeId"/> can name a folder: 1-128 of <c>[A-Za-z0-9._-]</c>, not starting with a dot.
    /// The upload service should refuse other certificate names before calling the store.
    /// </summary>
    public static bool IsValidProbeId(string? probeId) => StorageLayout.IsValidProbeId(probeId);

    /// <summary>
    /// Starts or resumes an upload. The session's <see cref="UploadSession.Offset"/> is where the probe continues:
    /// 0 for a new capture, the bytes already held for a resumed one, the full size for a capture already stored
    /// (<see cref="UploadSession.IsDuplicate"/>; that capture has then been handed to the sink, so it can be acknowledged at once).
    /// A second session for the same capture waits up to <see cref="CaptureStoreOptions.SessionWaitTimeout"/> for the first to end.
    /// </summary>
    /// <exception cref="UploadRejectedException">InvalidSha, InvalidHeader, TooLarge, QuotaExceeded, ChunkSequence (busy), SizeMismatch (duplicate of another size),
    /// ServerDiskLow, PartialUploadLimit.</exception>
    /// <exception cref="ArgumentException"><paramref name="probeId"/> is not a valid probe id.</exception>
    public async ValueTask<UploadSession> BeginAsync(string probeId, UploadHeader header, CancellationToken cancellationToken = default)
    {
        RequireProbeId(probeId);
        ArgumentNullException.ThrowIfNull(header);
        var sha = StorageLayout.NormalizeSha(header.Sha256)
            ?? throw Reject(probeId, header.Sha256 ?? string.Empty, UploadRejection.InvalidSha, "the declared SHA-256 is not 64 hexadecimal digits");
        CheckHeader(probeId, sha, header);

        var lease = await _locks.TryAcquireAsync(CaptureKey(probeId, sha), _sessionWaitTimeout, cancellationToken).ConfigureAwait(false)
            ?? throw Reject(probeId, sha, UploadRejection.ChunkSequence, "another upload of this capture is in progress");
        FileStream? part = null;
        IncrementalHash? hash = null;
        try
        {
            if (Layout.FindStored(probeId, sha) is { } dateDirectory)
            {
                var stored = await AcknowledgeDuplicateAsync(probeId, sha, header.Size, dateDirectory, cancellationToken).ConfigureAwait(false);
                lease.Dispose();
                return new UploadSession(this, stored);
            }

            // Checked after the duplicate test: a capture already held is acknowledged even if the limit has since dropped.
            if (header.Size > _maxCaptureBytes)
                throw Reject(probeId, sha, UploadRejection.TooLarge, $"declared size {header.Size} exceeds the limit of {_maxCaptureBytes} bytes");
            CheckFreeDisk(probeId, sha, header.Size);
            part = await OpenPartAsync(probeId, sha, cancellationToken).ConfigureAwait(false);
            var (meta, offset, evicted) = await ReservePartAsync(probeId, sha, header, part.SafeFileHandle, cancellationToken).ConfigureAwait(false);
            hash = await HashHeldBytesAsync(part.SafeFileHandle, offset, cancellationToken).ConfigureAwait(false);
            Log.Began(Logger, sha, probeId, offset, header.Size);
            return new UploadSession(this, probeId, meta, part, hash, offset, lease) { EvictedPartialUploads = evicted };
        }
        catch
        {
            hash?.Dispose();
            if (part is not null)
                await part.DisposeAsync().ConfigureAwait(false);
            lease.Dispose();
            throw;
        }
    }

    /// <summary>What the store holds of a capture, for a probe's status query. Does not wait for sessions in progress.</summary>
    /// <exception cref="UploadRejectedException">InvalidSha.</exception>
    public ValueTask<HeldBytes> GetHeldBytesAsync(string probeId, string sha256, CancellationToken cancellationToken = default)
    {
        RequireProbeId(probeId);
        cancellationToken.ThrowIfCancellationRequested();
        var sha = StorageLayout.NormalizeSha(sha256)
            ?? throw Reject(probeId, sha256 ?? string.Empty, UploadRejection.InvalidSha, "the SHA-256 is not 64 hexadecimal digits");
        if (Layout.FindStored(probeId, sha) is { } dateDirectory)
        {
            var capture = new FileInfo(StorageLayout.CapturePath(dateDirectory, sha));
            return ValueTask.FromResult(new HeldBytes(capture.Length, File.Exists(StorageLayout.QueuedPath(dateDirectory, sha))));
        }
        var part = new FileInfo(Layout.PartPath(probeId, sha));
        return ValueTask.FromResult(new HeldBytes(part.Exists ? part.Length : 0, false));
    }

    /// <summary>
    /// Brings the store to a consistent state after a crash; call at startup, before accepting uploads. Offers every
    /// stored capture without a <c>.queued</c> marker to the sink again (it may have been queued already: the sink is
    /// idempotent by SHA), removes what interrupted steps left behind, and deletes partial uploads untouched for
    /// <see cref="CaptureStoreOptions.AbandonedUploadAge"/>. Captures held by a live session are skipped.
    /// </summary>
    public async ValueTask<RecoveryReport> RecoverAsync(CancellationToken cancellationToken = default)
    {
        int requeued = 0, abandoned = 0, leftovers = 0, busy = 0;
        foreach (var probeDirectory in StorageLayout.ProbeDirectories(Layout.Captures).ToList())
        {
            var probeId = Path.GetFileName(probeDirectory);
            foreach (var dateDirectory in Layout.DateDirectories(probeId).ToList())
            {
                foreach (var sha in ShasIn(dateDirectory))
                {
                    using var lease = await _locks.TryAcquireAsync(CaptureKey(probeId, sha), TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                    if (lease is null)
                    {
                        busy++;
                        continue;
                    }
                    leftovers += DeleteTemporaryFiles(dateDirectory, sha);
                    var capturePath = StorageLayout.CapturePath(dateDirectory, sha);
                    if (File.Exists(capturePath))
                    {
                        if (!File.Exists(StorageLayout.ManifestPath(dateDirectory, sha)))
                            Log.ManifestMissing(Logger, sha, probeId);
                        if (!File.Exists(StorageLayout.QueuedPath(dateDirectory, sha)))
                        {
                            await OfferAsync(Stored(probeId, sha, dateDirectory, duplicate: false), dateDirectory, cancellationToken).ConfigureAwait(false);
                            Log.Requeued(Logger, sha, probeId);
                            requeued++;
                        }
                    }
                    else
                    {
                        // The manifest is written before the capture is renamed into place; a crash in between leaves it alone.
                        leftovers += Delete(StorageLayout.ManifestPath(dateDirectory, sha)) + Delete(StorageLayout.QueuedPath(dateDirectory, sha));
                    }
                }
            }
        }

        var swept = await ExpireAbandonedAsync(cancellationToken).ConfigureAwait(false);
        abandoned += swept.Abandoned;
        leftovers += swept.Leftovers;
        busy += swept.Busy;

        Log.Recovered(Logger, requeued, abandoned, leftovers, busy);
        return new RecoveryReport(requeued, abandoned, leftovers, busy);
    }

    /// <summary>
    /// Deletes partial uploads untouched for <see cref="CaptureStoreOptions.AbandonedUploadAge"/>, and what completed or
    /// interrupted uploads left in <c>incoming/</c>. Safe while uploads run: captures held by a session are skipped.
    /// </summary>
    public async ValueTask<SweepReport> ExpireAbandonedAsync(CancellationToken cancellationToken = default)
    {
        int abandoned = 0, leftovers = 0, busy = 0;
        var now = Time.GetUtcNow();
        foreach (var incoming in StorageLayout.ProbeDirectories(Layout.Incoming).ToList())
        {
            var probeId = Path.GetFileName(incoming);
            foreach (var sha in ShasIn(incoming))
            {
                using var lease = await _locks.TryAcquireAsync(CaptureKey(probeId, sha), TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                if (lease is null)
                {
                    busy++;
                    continue;
                }
                leftovers += DeleteTemporaryFiles(incoming, sha);
                var part = new FileInfo(Layout.PartPath(probeId, sha));
                var meta = new FileInfo(Layout.MetaPath(probeId, sha));
                if (Layout.FindStored(probeId, sha) is not null || !part.Exists)
                {
                    // Completed (the crash came before the meta was removed) or discarded: nothing here is needed.
                    leftovers += Delete(part.FullName) + Delete(meta.FullName);
                    continue;
                }
                var lastWrite = new DateTimeOffset(meta.Exists && meta.LastWriteTimeUtc > part.LastWriteTimeUtc ? meta.LastWriteTimeUtc : part.LastWriteTimeUtc);
                if (now - lastWrite >= _abandonedUploadAge)
                {
                    Delete(part.FullName);
                    Delete(meta.FullName);
                    Log.Abandoned(Logger, sha, probeId, lastWrite);
                    abandoned++;
                }
            }
        }
        return new SweepReport(abandoned, leftovers, busy);
    }

    internal static string CaptureKey(string probeId, string sha) => probeId + "/" + sha;

    internal static string ProbeKey(string probeId) => probeId;

    internal void Step(CommitStep step) => StepHook?.Invoke(step);

    internal UploadRejectedException Reject(string probeId, string sha, UploadRejection rejection, string reason, long? contentOffset = null, long? expectedOffset = null)
    {
        // An invalid SHA is whatever the probe sent; keep the log line bounded.
        Log.Rejected(Logger, rejection == UploadRejection.ServerDiskLow ? LogLevel.Debug : LogLevel.Warning, sha.Length > StorageLayout.ShaLength ? sha[..StorageLayout.ShaLength] + "..." : sha, probeId, rejection, reason);
        return new UploadRejectedException(rejection, reason, contentOffset, expectedOffset);
    }

    internal StoredCapture Stored(string probeId, string sha, string dateDirectory, bool duplicate)
    {
        var path = StorageLayout.CapturePath(dateDirectory, sha);
        return new StoredCapture(sha, probeId, path, new FileInfo(path).Length, StorageLayout.ManifestPath(dateDirectory, sha), duplicate);
    }

    /// <summary>Hands a stored capture to the sink, then marks it queued. The marker is not fsynced: losing it only repeats the offer.</summary>
    internal async ValueTask OfferAsync(StoredCapture capture, string dateDirectory, CancellationToken cancellationToken)
    {
        try
        {
            await Sink.OnStoredAsync(capture, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.SinkFailed(Logger, e, capture.Sha256, capture.ProbeId);
            throw;
        }
        Step(CommitStep.SinkReturned);
        using (DurableFile.OpenExclusive(StorageLayout.QueuedPath(dateDirectory, capture.Sha256), FileMode.Create))
        {
        }
        Step(CommitStep.Queued);
    }

    private async ValueTask<StoredCapture> AcknowledgeDuplicateAsync(string probeId, string sha, long declaredSize, string dateDirectory, CancellationToken cancellationToken)
    {
        var stored = Stored(probeId, sha, dateDirectory, duplicate: true);
        if (stored.Size != declaredSize)
        {
            // Same name, other size: the probe's digest cannot be right, so its file must not be deleted on our word.
            throw Reject(probeId, sha, UploadRejection.SizeMismatch,
                $"a capture with this SHA-256 is stored with {stored.Size} bytes, the upload declares {declaredSize}");
        }
        Delete(Layout.PartPath(probeId, sha));
        Delete(Layout.MetaPath(probeId, sha));
        // An earlier attempt may have stored it and failed in the sink: the acknowledgement still needs it queued.
        if (!File.Exists(StorageLayout.QueuedPath(dateDirectory, sha)))
            await OfferAsync(stored, dateDirectory, cancellationToken).ConfigureAwait(false);
        Log.Duplicate(Logger, sha, probeId);
        return stored;
    }

    /// <summary>Sessions that hold or wait for one capture in this process.</summary>
    internal int SessionsFor(string probeId, string sha256) => _locks.Contenders(CaptureKey(probeId, StorageLayout.NormalizeSha(sha256) ?? sha256));

    /// <summary>Opens or creates the part file with an exclusive lock, waiting while another process holds it.</summary>
    private async ValueTask<FileStream> OpenPartAsync(string probeId, string sha, CancellationToken cancellationToken)
    {
        DurableFile.CreateDirectory(Layout.ProbeIncoming(probeId));
        var path = Layout.PartPath(probeId, sha);
        var deadline = Time.GetUtcNow() + _sessionWaitTimeout;
        while (true)
        {
            try
            {
                return DurableFile.OpenExclusive(path, FileMode.OpenOrCreate);
            }
            catch (IOException e) when (e.HResult is LockConflictLinux or LockConflictWindows)
            {
                if (Time.GetUtcNow() >= deadline)
                    throw Reject(probeId, sha, UploadRejection.ChunkSequence, "another process is uploading this capture");
            }
            await Task.Delay(LockRetryDelay, Time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Decides where the upload resumes and reserves its declared size against the quota by writing the meta file.
    /// Runs under the probe's lock, so concurrent uploads of one probe each see the others' reservations.
    /// </summary>
    private async ValueTask<(IncomingMeta Meta, long Offset, int Evicted)> ReservePartAsync(
        string probeId, string sha, UploadHeader header, SafeFileHandle handle, CancellationToken cancellationToken)
    {
        using var probeLease = await _locks.AcquireAsync(ProbeKey(probeId), cancellationToken).ConfigureAwait(false);
        var metaPath = Layout.MetaPath(probeId, sha);
        var previous = StoreFiles.ReadMeta(metaPath);
        long held = RandomAccess.GetLength(handle);
        if (held > header.Size || (previous is not null && previous.Size != header.Size && held > 0))
        {
            // The same name now comes with another size: the held bytes belong to a different claim, start over.
            Log.Restarted(Logger, sha, probeId, held, header.Size, previous?.Size);
            RandomAccess.SetLength(handle, 0);
            held = 0;
        }

        // A new partial upload: the probe's others make room, idle longest first, so that no probe fills incoming/.
        int evicted = previous is null && held == 0 ? await MakeRoomForPartialAsync(probeId, sha, cancellationToken).ConfigureAwait(false) : 0;

        long used = ProbeUsage(probeId, sha);
        if (used + header.Size > _probeQuotaBytes)
        {
            if (held == 0)
            {
                Delete(Layout.PartPath(probeId, sha));
                Delete(metaPath);
            }
            throw Reject(probeId, sha, UploadRejection.QuotaExceeded,
                $"the probe holds {used} bytes; {header.Size} more would pass its quota of {_probeQuotaBytes}");
        }

        var meta = new IncomingMeta(sha, header.Size, header.WindowStart, header.WindowEnd, header.ManifestJson ?? string.Empty,
            previous?.Began ?? Time.GetUtcNow());
        if (meta != previous)
            DurableFile.WriteAtomically(metaPath, StoreFiles.SerializeMeta(meta));
        return (meta, held, evicted);
    }

    /// <summary>
    /// Deletes the probe's idle partial uploads, least recently written first, until a new one fits within
    /// <see cref="CaptureStoreOptions.MaxPartialUploadsPerProbe"/>; refuses the new one when the others are all in
    /// progress. Runs under the probe's lock; the count is bounded by the cap, so listing the folder stays cheap.
    /// </summary>
    private async ValueTask<int> MakeRoomForPartialAsync(string probeId, string sha, CancellationToken cancellationToken)
    {
        var others = Directory.EnumerateFiles(Layout.ProbeIncoming(probeId))
            .Select(f => (Sha: StorageLayout.ShaOfFileName(Path.GetFileName(f)), Written: File.GetLastWriteTimeUtc(f)))
            .Where(f => f.Sha is not null && f.Sha != sha)
            .GroupBy(f => f.Sha!, StringComparer.Ordinal)
            .Select(g => (Sha: g.Key, Written: g.Max(f => f.Written)))
            .OrderBy(f => f.Written)
            .ToList();
        int evicted = 0;
        for (int i = 0; i < others.Count && others.Count - evicted >= _maxPartialUploads; i++)
        {
            using var lease = await _locks.TryAcquireAsync(CaptureKey(probeId, others[i].Sha), TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            if (lease is null)
                continue; // being uploaded now: not idle
            Delete(Layout.PartPath(probeId, others[i].Sha));
            Delete(Layout.MetaPath(probeId, others[i].Sha));
            Log.Evicted(Logger, others[i].Sha, probeId, new DateTimeOffset(others[i].Written), _maxPartialUploads);
            evicted++;
        }
        if (others.Count - evicted >= _maxPartialUploads)
        {
            Delete(Layout.PartPath(probeId, sha));
            throw Reject(probeId, sha, UploadRejection.PartialUploadLimit,
                $"the probe has {others.Count - evicted} partial uploads in progress, its limit is {_maxPartialUploads}; retry when one ends");
        }
        return evicted;
    }

    /// <summary>Refuses an upload that would take the file system below <see cref="CaptureStoreOptions.MinFreeDiskBytes"/>.</summary>
    private void CheckFreeDisk(string probeId, string sha, long size)
    {
        if (_minFreeDiskBytes == 0)
            return;
        var part = new FileInfo(Layout.PartPath(probeId, sha));
        long needed = size - (part.Exists ? Math.Min(part.Length, size) : 0);
        long free = new DriveInfo(Layout.Root).AvailableFreeSpace;
        if (free - needed < _minFreeDiskBytes)
        {
            throw Reject(probeId, sha, UploadRejection.ServerDiskLow,
                $"the server's disk has {free} bytes free; {needed} more would pass its free-disk floor of {_minFreeDiskBytes} bytes; retry later");
        }
    }

    /// <summary>A resumed upload's hash must cover the bytes already held: read them once.</summary>
    private static async ValueTask<IncrementalHash> HashHeldBytesAsync(SafeFileHandle handle, long length, CancellationToken cancellationToken)
    {
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (length == 0)
            return hash;
        var buffer = ArrayPool<byte>.Shared.Rent(HashBufferSize);
        try
        {
            for (long position = 0; position < length;)
            {
                int wanted = (int)Math.Min(buffer.Length, length - position);
                int read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, wanted), position, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    throw new IOException("The part file shrank while it was being hashed.");
                hash.AppendData(buffer, 0, read);
                position += read;
            }
            return hash;
        }
        catch
        {
            hash.Dispose();
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Bytes the probe occupies apart from capture <paramref name="exceptSha"/>; partial uploads count at their declared size.</summary>
    private long ProbeUsage(string probeId, string exceptSha)
    {
        long total = 0;
        foreach (var (_, length) in Files(Layout.ProbeCaptures(probeId), recurse: true))
            total += length;
        foreach (var (name, length) in Files(Layout.ProbeIncoming(probeId), recurse: false))
        {
            var sha = StorageLayout.ShaOfFileName(name);
            if (sha == exceptSha)
                continue;
            long reserved = sha is not null && name.EndsWith(StorageLayout.PartSuffix, StringComparison.Ordinal)
                ? StoreFiles.ReadMeta(Layout.MetaPath(probeId, sha))?.Size ?? 0
                : 0;
            total += Math.Max(length, reserved);
        }
        return total;
    }

    private static IEnumerable<(string Name, long Length)> Files(string directory, bool recurse)
    {
        if (!Directory.Exists(directory))
            yield break;
        var options = new EnumerationOptions { RecurseSubdirectories = recurse, IgnoreInaccessible = true, AttributesToSkip = 0 };
        var files = new FileSystemEnumerable<(string, long)>(directory, (ref FileSystemEntry entry) => (entry.FileName.ToString(), entry.Length), options)
        {
            ShouldIncludePredicate = (ref FileSystemEntry entry) => !entry.IsDirectory,
        };
        foreach (var file in files)
            yield return file;
    }

    private static List<string> ShasIn(string directory) =>
        Directory.EnumerateFiles(directory)
            .Select(f => StorageLayout.ShaOfFileName(Path.GetFileName(f)))
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .ToList();

    private static int DeleteTemporaryFiles(string directory, string sha)
    {
        int deleted = 0;
        foreach (var path in Directory.EnumerateFiles(directory, sha + ".*" + StorageLayout.TempSuffix).ToList())
            deleted += Delete(path);
        return deleted;
    }

    /// <summary>Deletes a file; 1 when it existed.</summary>
    internal static int Delete(string path)
    {
        if (!File.Exists(path))
            return 0;
        DurableFile.DeleteIfExists(path);
        return 1;
    }

    private void CheckHeader(string probeId, string sha, UploadHeader header)
    {
        if (header.Size < 0)
            throw Reject(probeId, sha, UploadRejection.InvalidHeader, $"declared size {header.Size} is negative");
        if (header.WindowEnd < header.WindowStart)
            throw Reject(probeId, sha, UploadRejection.InvalidHeader, $"capture window ends ({header.WindowEnd:O}) before it starts ({header.WindowStart:O})");
        // The window names the capture's date folder and the lake's partitions: a probe's wild clock must not spread them.
        var now = Time.GetUtcNow();
        if (header.WindowEnd > now + _maxWindowAhead)
        {
            throw Reject(probeId, sha, UploadRejection.InvalidHeader,
                $"capture window ends at {header.WindowEnd:O}, more than {_maxWindowAhead} after the server's clock ({now:O})");
        }
        if (header.WindowStart < now - _maxWindowAge)
        {
            throw Reject(probeId, sha, UploadRejection.InvalidHeader,
                $"capture window starts at {header.WindowStart:O}, more than {_maxWindowAge} before the server's clock ({now:O})");
        }
        if (StoreFiles.CheckProbeManifest(header.ManifestJson, _maxManifestBytes, sha, header.Size) is { } problem)
            throw Reject(probeId, sha, UploadRejection.InvalidHeader, problem);
    }

    private static void RequireProbeId(string probeId)
    {
        if (!StorageLayout.IsValidProbeId(probeId))
            throw new ArgumentException($"'{probeId}' is not a valid probe id (1-128 of A-Z a-z 0-9 . _ -, not starting with a dot).", nameof(probeId));
    }
}

using System.Security.Cryptography;
using Survey6.Contracts;
using Survey6.Packets.Capture;
using Survey6.Packets.Files;

namespace Survey6.Server.Storage;

/// <summary>
/// One upload attempt of one capture, from <see cref="CaptureStore.BeginAsync"/>. Holds the capture's lock until it
/// completes, fails or is disposed; dispose it when the connection ends (the held bytes stay for the next attempt).
/// One call at a time. A rejection that leaves the held bytes consistent (out-of-sequence chunk, completing short
/// of the size, malformed trailer) leaves the session usable; any other failure ends it, and a new session resumes
/// from what is on disk.
/// </summary>
public sealed class UploadSession : IAsyncDisposable
{
    private const long WritebackBytes = 8L << 20;
    private readonly CaptureStore _store;
    private readonly IncomingMeta? _meta;
    private FileStream? _part;
    private IncrementalHash? _hash;
    private IDisposable? _lease;
    private StoredCapture? _stored;
    private State _state;
    private int _busy;
    private long _writebackFrom; // bytes before this offset have had their writeback started
    private int _disposeRequested;

    internal UploadSession(CaptureStore store, string probeId, IncomingMeta meta, FileStream part, IncrementalHash hash, long offset, IDisposable lease)
    {
        _store = store;
        _meta = meta;
        _part = part;
        _hash = hash;
        _lease = lease;
        ProbeId = probeId;
        Sha256 = meta.Sha256;
        Size = meta.Size;
        Offset = offset;
        _writebackFrom = offset;
    }

    internal UploadSession(CaptureStore store, StoredCapture duplicate)
    {
        _store = store;
        _stored = duplicate;
        _state = State.Completed;
        ProbeId = duplicate.ProbeId;
        Sha256 = duplicate.Sha256;
        Size = duplicate.Size;
        Offset = duplicate.Size;
        IsDuplicate = true;
    }

    private enum State
    {
        Open,
        Failed,
        Completed,
        Disposed,
    }

    /// <summary>The uploading probe.</summary>
    public string ProbeId { get; }

    /// <summary>Lower-case hex SHA-256 of the capture.</summary>
    public string Sha256 { get; }

    /// <summary>Declared size in bytes.</summary>
    public long Size { get; }

    /// <summary>Bytes held so far: where the next chunk must start.</summary>
    public long Offset { get; private set; }

    /// <summary>True when the capture was already stored (and handed to the sink): nothing to send, acknowledge at once.</summary>
    public bool IsDuplicate { get; }

    /// <summary>Idle partial uploads of the probe deleted to make room for this one (<see cref="CaptureStoreOptions.MaxPartialUploadsPerProbe"/>).</summary>
    public int EvictedPartialUploads { get; internal init; }

    /// <summary>The stored capture once complete; for a duplicate, from the start.</summary>
    public StoredCapture? Stored => _stored;

    /// <summary>Appends a chunk. Not durable on return: only <see cref="CompleteAsync"/> makes the capture durable.</summary>
    /// <exception cref="UploadRejectedException">
    /// ChunkSequence when <paramref name="offset"/> is not <see cref="Offset"/>; SizeMismatch when the chunk would run
    /// past <see cref="Size"/>. Both leave the session usable.
    /// </exception>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken = default)
    {
        Enter();
        try
        {
            if (_state != State.Open)
                throw NotOpen();
            if (offset != Offset)
                throw _store.Reject(ProbeId, Sha256, UploadRejection.ChunkSequence, $"chunk starts at {offset}, the held bytes end at {Offset}", expectedOffset: Offset);
            if (chunk.Length > Size - offset)
                throw _store.Reject(ProbeId, Sha256, UploadRejection.SizeMismatch, $"chunk of {chunk.Length} bytes at {offset} runs past the declared size of {Size}", expectedOffset: Offset);
            if (chunk.IsEmpty)
                return;

            // Failed until the write and the hash agree again; an interrupted write leaves the file longer than Offset.
            _state = State.Failed;
            await RandomAccess.WriteAsync(_part!.SafeFileHandle, chunk, offset, cancellationToken).ConfigureAwait(false);
            _hash!.AppendData(chunk.Span);
            Offset += chunk.Length;
            _state = State.Open;
            if (Offset - _writebackFrom >= WritebackBytes)
            {
                // Keep the disk busy while the rest arrives; otherwise the whole file waits in the page cache for the final fsync.
                DurableFiles.StartWriteback(_part.SafeFileHandle, _writebackFrom, Offset - _writebackFrom);
                _writebackFrom = Offset;
            }
        }
        catch when (_state == State.Failed)
        {
            Release();
            throw;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Verifies size, SHA-256 and content; makes the capture and its manifest durable under their final names; hands
    /// it to the sink. Returns only after all of that, so the caller may acknowledge. Calling again returns the same result.
    /// </summary>
    /// <param name="trailerSha256">The digest the probe computed while sending; must match the header's.</param>
    /// <param name="cancellationToken">Cancels the commit; the capture is then either still resumable or stored and re-offered on the next attempt.</param>
    /// <exception cref="UploadRejectedException">
    /// InvalidSha (usable); SizeMismatch when fewer bytes than declared are held (usable, resume by writing the rest);
    /// DigestMismatch and NotACapture delete the held bytes: the probe must send the file again.
    /// </exception>
    public async ValueTask<StoredCapture> CompleteAsync(string trailerSha256, CancellationToken cancellationToken = default)
    {
        Enter();
        try
        {
            var trailer = StorageLayout.NormalizeSha(trailerSha256)
                ?? throw _store.Reject(ProbeId, Sha256, UploadRejection.InvalidSha, "the trailer SHA-256 is not 64 hexadecimal digits");
            if (_stored is not null)
            {
                return trailer == Sha256
                    ? _stored
                    : throw _store.Reject(ProbeId, Sha256, UploadRejection.DigestMismatch, $"the trailer SHA-256 {trailer} differs from the stored capture's");
            }
            if (_state != State.Open)
                throw NotOpen();
            if (Offset != Size)
                throw _store.Reject(ProbeId, Sha256, UploadRejection.SizeMismatch, $"completed with {Offset} of {Size} declared bytes; they are kept for resuming", expectedOffset: Offset);

            _state = State.Failed;
            var stored = await CommitAsync(trailer, cancellationToken).ConfigureAwait(false);
            _stored = stored;
            _state = State.Completed;
            Release();
            return stored;
        }
        catch when (_state == State.Failed)
        {
            Release();
            throw;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Ends the session. Unless it completed, the held bytes stay on disk for the next attempt to resume.</summary>
    public ValueTask DisposeAsync()
    {
        Volatile.Write(ref _disposeRequested, 1);
        // A call in progress releases in its Exit instead; whichever of the two comes last does it.
        if (Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
            ReleaseAfterDispose();
        return ValueTask.CompletedTask;
    }

    private async ValueTask<StoredCapture> CommitAsync(string trailer, CancellationToken cancellationToken)
    {
        var layout = _store.Layout;
        var digest = Convert.ToHexStringLower(_hash!.GetHashAndReset());
        if (digest != Sha256 || trailer != Sha256)
        {
            Discard();
            throw _store.Reject(ProbeId, Sha256, UploadRejection.DigestMismatch,
                $"the received bytes hash to {digest}, the trailer says {trailer}; the partial upload was deleted and must be sent again");
        }

        _part!.Flush(flushToDisk: true);
        _store.Step(CommitStep.PartSynced);

        var format = Validate(cancellationToken);
        _store.Step(CommitStep.Validated);

        // The manifest goes first so that a stored capture always has one; a crash before the rename leaves only
        // a manifest without a capture, which recovery removes and the next attempt rewrites.
        var dateDirectory = layout.DateDirectory(ProbeId, _meta!.WindowStart);
        DurableFile.CreateDirectory(dateDirectory);
        var manifest = StoreFiles.FormatManifest(ProbeId, Sha256, Size, format, _meta, _store.Time.GetUtcNow(), _store.Probes?.Find(ProbeId));
        DurableFile.WriteAtomically(StorageLayout.ManifestPath(dateDirectory, Sha256), manifest);
        _store.Step(CommitStep.ManifestWritten);

        var capturePath = StorageLayout.CapturePath(dateDirectory, Sha256);
        var partPath = layout.PartPath(ProbeId, Sha256);
        // Under the probe's lock so that a quota count never sees the bytes both as a part and as a capture, or as neither.
        using (await _store.Locks.AcquireAsync(CaptureStore.ProbeKey(ProbeId), cancellationToken).ConfigureAwait(false))
        {
            // rename(2): the capture appears whole or not at all. Overwriting is harmless: same name, same bytes.
            File.Move(partPath, capturePath, overwrite: true);
        }
        _store.Step(CommitStep.Renamed);

        DurableFiles.SyncDirectory(dateDirectory);
        DurableFiles.SyncDirectory(layout.ProbeIncoming(ProbeId));
        _store.Step(CommitStep.DirectoriesSynced);

        await _part!.DisposeAsync().ConfigureAwait(false);
        _part = null;
        CaptureStore.Delete(layout.MetaPath(ProbeId, Sha256));
        _store.Step(CommitStep.MetaRemoved);

        var stored = _store.Stored(ProbeId, Sha256, dateDirectory, duplicate: false);
        await _store.OfferAsync(stored, dateDirectory, cancellationToken).ConfigureAwait(false);
        Log.Stored(_store.Logger, Sha256, ProbeId, Size, capturePath);
        return stored;
    }

    /// <summary>Reads the whole file with the packet core's reader; returns "pcap" or "pcapng".</summary>
    private string Validate(CancellationToken cancellationToken)
    {
        using var reader = CaptureReader.Open(new HandleReadStream(_part!.SafeFileHandle, Size));
        long frames = 0;
        while (reader.TryRead(out _))
        {
            if ((++frames & 0xFFF) == 0)
                cancellationToken.ThrowIfCancellationRequested();
        }
        if (reader.Error is { } error)
        {
            Discard();
            throw _store.Reject(ProbeId, Sha256, UploadRejection.NotACapture,
                $"not a readable pcap or pcapng file: {error.Message} (at byte {error.Offset}); the partial upload was deleted", contentOffset: error.Offset);
        }
        return reader.Format == CaptureFileFormat.Pcap ? "pcap" : "pcapng";
    }

    /// <summary>Deletes the held bytes: they can never become this capture.</summary>
    private void Discard()
    {
        _part?.Dispose();
        _part = null;
        CaptureStore.Delete(_store.Layout.PartPath(ProbeId, Sha256));
        CaptureStore.Delete(_store.Layout.MetaPath(ProbeId, Sha256));
    }

    private void Release()
    {
        _hash?.Dispose();
        _hash = null;
        _part?.Dispose();
        _part = null;
        Interlocked.Exchange(ref _lease, null)?.Dispose();
    }

    private InvalidOperationException NotOpen() => _state switch
    {
        State.Completed => new InvalidOperationException("The upload is already complete."),
        State.Disposed => new InvalidOperationException("The upload session is disposed."),
        _ => new InvalidOperationException("The upload session failed; begin a new one to resume from the held bytes."),
    };

    private void Enter()
    {
        if (Interlocked.Exchange(ref _busy, 1) != 0)
            throw new InvalidOperationException("An upload session takes one call at a time.");
        if (Volatile.Read(ref _disposeRequested) != 0)
        {
            Volatile.Write(ref _busy, 0);
            throw new ObjectDisposedException(nameof(UploadSession));
        }
    }

    private void Exit()
    {
        Volatile.Write(ref _busy, 0);
        if (Volatile.Read(ref _disposeRequested) != 0 && Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
            ReleaseAfterDispose();
    }

    // Runs with _busy held.
    private void ReleaseAfterDispose()
    {
        Release();
        if (_state != State.Completed)
            _state = State.Disposed;
        Volatile.Write(ref _busy, 0);
    }
}

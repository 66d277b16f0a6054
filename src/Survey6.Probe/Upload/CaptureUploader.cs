using System.Net.Http;
using System.Net.Sockets;
using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Survey6.Contracts;
using Survey6.Contracts.V1;

namespace Survey6.Probe.Upload;

/// <summary>
/// Uploads one closed capture file to the C&amp;C (docs/protocol.md, "Upload"): hashes it, asks how much the server
/// already holds, sends the rest in chunks paced by an optional <see cref="IUploadRateLimiter"/>, and returns the
/// server's acknowledgement. Transient failures (server unreachable, restarted or busy, connection reset, a stalled
/// call) are retried with exponential backoff and jitter, each retry resuming where the server's copy ends.
/// <para>
/// It never deletes or changes the file. The caller deletes it only after a <see cref="CaptureUploadResult"/> is
/// returned: that is the server's promise that the capture is durable and queued. Any exception means the file must
/// stay and be offered again later.
/// </para>
/// Thread-safe: one uploader can run several uploads at once (of different files).
/// </summary>
public sealed class CaptureUploader
{
    private readonly Contracts.V1.Upload.UploadClient _client;
    private readonly CaptureUploaderOptions _options;
    private readonly IUploadRateLimiter? _rateLimiter;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly LogLevel _retryLogLevel;

    /// <param name="retryLogLevel">
    /// The level of the line each retried attempt logs: a warning for a person at a terminal; lower for a caller that
    /// reports repeating failures itself, once per condition (the probe daemon's <c>SpoolUploader</c>).
    /// </param>
    /// <exception cref="OptionsValidationException">The options are invalid.</exception>
    public CaptureUploader(
        CallInvoker callInvoker,
        IOptions<CaptureUploaderOptions>? options = null,
        IUploadRateLimiter? rateLimiter = null,
        ILogger<CaptureUploader>? logger = null,
        TimeProvider? timeProvider = null,
        LogLevel retryLogLevel = LogLevel.Warning)
    {
        ArgumentNullException.ThrowIfNull(callInvoker);
        var value = options?.Value ?? new CaptureUploaderOptions();
        var validation = new CaptureUploaderOptionsValidator().Validate(Options.DefaultName, value);
        if (validation.Failed)
            throw new OptionsValidationException(Options.DefaultName, typeof(CaptureUploaderOptions), validation.Failures);
        // A copy, so that later changes to the caller's object cannot bypass validation.
        _options = new CaptureUploaderOptions
        {
            ChunkBytes = value.ChunkBytes,
            MaxAttempts = value.MaxAttempts,
            InitialBackoff = value.InitialBackoff,
            MaxBackoff = value.MaxBackoff,
            StallTimeout = value.StallTimeout,
        };
        _client = new Contracts.V1.Upload.UploadClient(callInvoker);
        _rateLimiter = rateLimiter;
        _logger = logger ?? NullLogger<CaptureUploader>.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _retryLogLevel = retryLogLevel;
    }

    /// <summary>Uploads <paramref name="path"/>; returns once the server acknowledged it.</summary>
    /// <param name="path">A closed capture file; it must not change during the upload.</param>
    /// <param name="manifest">The capture window and the spool's manifest JSON.</param>
    /// <param name="progress">Receives the offset up to which bytes were handed to the connection.</param>
    /// <param name="attemptFailed">Told of each failed attempt that is retried ("Unavailable: detail"), as it happens: retries can take minutes.</param>
    /// <param name="cancellationToken">Stops the upload; what the server received stays there for the next attempt.</param>
    /// <exception cref="CaptureUploadException">The server refused the capture, or transient failures outlasted <see cref="CaptureUploaderOptions.MaxAttempts"/>.</exception>
    /// <exception cref="IOException">The file could not be read, or changed while it was uploaded.</exception>
    public async Task<CaptureUploadResult> UploadAsync(string path, UploadManifest manifest, IProgress<long>? progress = null, Action<string>? attemptFailed = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(manifest);
        var (sha, size) = await HashAsync(path, cancellationToken).ConfigureAwait(false);
        var state = new UploadState();
        var failedAttempts = 0;
        string? lastFailure = null;
        for (int attempt = 1; ; attempt++)
        {
            UploadAck ack;
            try
            {
                ack = await AttemptAsync(path, sha, size, manifest, state, progress, cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            catch (RpcException e)
            {
                var rejection = e.Trailers.GetValue(UploadRejections.Trailer);
                if (rejection == UploadRejections.DigestMismatch && !state.Restarted)
                {
                    // The server's partial copy was damaged (e.g. by a power loss) and is gone; if our file is still
                    // what we hashed, sending it whole once more is the cure.
                    if (await HashAsync(path, cancellationToken).ConfigureAwait(false) != (sha, size))
                        throw new IOException($"{path} changed while it was being uploaded");
                    UploadLog.Restarting(_logger, path, sha);
                    state.Restarted = true;
                    continue;
                }

                if (!IsTransient(e, rejection))
                    throw new CaptureUploadException($"the server refused {path}: {e.Status.Detail}", e.StatusCode, rejection, isTransient: false, attempt, e);
                if (attempt >= _options.MaxAttempts)
                {
                    throw new CaptureUploadException($"gave up on {path} after {attempt} attempts: {e.StatusCode}: {e.Status.Detail}",
                        e.StatusCode, rejection, isTransient: true, attempt, e);
                }

                // The server told us where to continue; asking again costs nothing, waiting would.
                var delay = e.StatusCode == StatusCode.OutOfRange ? TimeSpan.Zero : Backoff(attempt);
                if (e.StatusCode != StatusCode.OutOfRange)
                {
                    failedAttempts++;
                    lastFailure = $"{e.StatusCode}: {e.Status.Detail}";
                    attemptFailed?.Invoke(lastFailure);
                }

                UploadLog.Retrying(_logger, _retryLogLevel, path, e.StatusCode, e.Status.Detail, attempt, _options.MaxAttempts, delay);
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (!string.Equals(ack.Sha256, sha, StringComparison.Ordinal))
            {
                throw new CaptureUploadException($"the server acknowledged {ack.Sha256}, not {path} ({sha}); keeping the file",
                    StatusCode.Internal, null, isTransient: false, attempt);
            }

            UploadLog.Uploaded(_logger, path, sha, size, state.Sent, state.ResumedFrom ?? 0, attempt, ack.Duplicate);
            return new CaptureUploadResult(ack, path, size, state.ResumedFrom ?? 0, state.Sent, attempt, failedAttempts, lastFailure);
        }
    }

    /// <summary>Lower-case hex SHA-256 and length of a file.</summary>
    public static async Task<(string Sha256, long Size)> HashAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var digest = await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false);
        return (Convert.ToHexStringLower(digest), file.Position);
    }

    private async Task<UploadAck> AttemptAsync(
        string path, string sha, long size, UploadManifest manifest, UploadState state, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        // Cancelled when the attempt makes no progress for StallTimeout; the timer restarts at every step.
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(_options.StallTimeout);
        var status = await _client.GetUploadStatusAsync(new UploadStatusRequest { Sha256 = sha }, cancellationToken: stall.Token).ConfigureAwait(false);
        if (status.Complete && status.BytesHeld == (ulong)size)
        {
            state.ResumedFrom = size;
            return new UploadAck { Sha256 = sha, StoredBytes = status.BytesHeld, Duplicate = true };
        }

        // More than the file holds cannot be ours: the server starts such a capture over.
        long offset = status.BytesHeld <= (ulong)size ? (long)status.BytesHeld : 0;
        state.ResumedFrom = offset;

        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.Asynchronous | FileOptions.SequentialScan);
        if (file.Length != size)
            throw new IOException($"{path} changed while it was being uploaded ({file.Length} bytes, {size} when hashed)");

        using var call = _client.Upload(cancellationToken: stall.Token);
        await SendAsync(call.RequestStream, file.SafeFileHandle, path, sha, size, offset, manifest, state, progress, stall, cancellationToken).ConfigureAwait(false);
        stall.CancelAfter(_options.StallTimeout);
        // Also after a failed write: the response then carries the status the call ended with.
        return await call.ResponseAsync.ConfigureAwait(false);
    }

    /// <summary>Header, chunks from <paramref name="offset"/>, trailer; stops early when a write fails because the call ended.</summary>
    private async Task SendAsync(
        IClientStreamWriter<UploadChunk> requests, Microsoft.Win32.SafeHandles.SafeFileHandle file, string path, string sha, long size, long offset,
        UploadManifest manifest, UploadState state, IProgress<long>? progress, CancellationTokenSource stall, CancellationToken cancellationToken)
    {
        var header = new Contracts.V1.UploadHeader
        {
            Sha256 = sha,
            Size = (ulong)size,
            WindowStart = Timestamp.FromDateTimeOffset(manifest.WindowStart),
            WindowEnd = Timestamp.FromDateTimeOffset(manifest.WindowEnd),
            ManifestJson = manifest.Json ?? "",
        };
        if (!await TryWriteAsync(requests, new UploadChunk { Header = header }).ConfigureAwait(false))
            return;

        var buffer = new byte[(int)Math.Clamp(size - offset, 1, _options.ChunkBytes)];
        while (offset < size)
        {
            int read = await RandomAccess.ReadAsync(file, buffer.AsMemory(0, (int)Math.Min(buffer.Length, size - offset)), offset, cancellationToken).ConfigureAwait(false);
            if (read == 0)
                throw new IOException($"{path} is shorter than the {size} bytes it had when hashed");
            if (_rateLimiter is not null)
            {
                // Waiting for the limiter is not the server stalling.
                stall.CancelAfter(Timeout.InfiniteTimeSpan);
                await _rateLimiter.WaitAsync(read, cancellationToken).ConfigureAwait(false);
            }

            stall.CancelAfter(_options.StallTimeout);
            // Copied: a channel with a retry policy keeps sent messages for replay, so the buffer must not be shared.
            var chunk = new UploadChunk { Data = new UploadData { Offset = (ulong)offset, Data = ByteString.CopyFrom(buffer, 0, read) } };
            if (!await TryWriteAsync(requests, chunk).ConfigureAwait(false))
                return;
            offset += read;
            state.Sent += read;
            progress?.Report(offset);
        }

        stall.CancelAfter(_options.StallTimeout);
        if (!await TryWriteAsync(requests, new UploadChunk { Trailer = new UploadTrailer { Sha256 = sha } }).ConfigureAwait(false))
            return;
        try
        {
            await requests.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException or IOException or OperationCanceledException)
        {
            // As in TryWriteAsync: the response tells.
        }
    }

    private static async Task<bool> TryWriteAsync(IClientStreamWriter<UploadChunk> requests, UploadChunk message)
    {
        try
        {
            await requests.WriteAsync(message).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException or IOException or OperationCanceledException)
        {
            // The call is over (refused, reset or cancelled); the response says how.
            return false;
        }
    }

    /// <summary>
    /// Whether the same upload may succeed later as it is. Refusals of the capture itself (its size, digest, content,
    /// the quota) are not; an unreachable, restarting or busy server, a broken connection and a stall are.
    /// </summary>
    internal static bool IsTransient(RpcException e, string? rejection) => e.StatusCode switch
    {
        StatusCode.Unavailable or StatusCode.Aborted or StatusCode.DeadlineExceeded or StatusCode.Cancelled or StatusCode.OutOfRange => true,
        // A refusal by the server names itself; the same codes without a name come from a broken connection.
        StatusCode.Internal or StatusCode.Unknown => rejection is null && IsConnectionFailure(e.Status.DebugException),
        _ => false,
    };

    private static bool IsConnectionFailure(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException or HttpRequestException or SocketException)
                return true;
        }

        return false;
    }

    /// <summary>Exponential, capped, with jitter over the upper half so that probes cut off together do not return together.</summary>
    private TimeSpan Backoff(int attempt)
    {
        var ceiling = _options.InitialBackoff * Math.Pow(2, Math.Min(attempt - 1, 30));
        if (ceiling > _options.MaxBackoff)
            ceiling = _options.MaxBackoff;
        return ceiling * (0.5 + (Random.Shared.NextDouble() / 2));
    }

    private sealed class UploadState
    {
        public long Sent { get; set; }

        public long? ResumedFrom { get; set; }

        public bool Restarted { get; set; }
    }
}

using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Survey6.Contracts;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Security;
using Survey6.Server.Storage;
using StoreHeader = Survey6.Server.Storage.UploadHeader;
using WireHeader = Survey6.Contracts.V1.UploadHeader;

namespace Survey6.Server.Uploads;

/// <summary>
/// survey6.v1.Upload over <see cref="CaptureStore"/>. The probe is the one named by the call's client certificate;
/// nothing in a message can change it. An <see cref="UploadAck"/> is returned only after the store has made the
/// capture durable and the sink (<see cref="IngestingCaptureSink"/>) has queued and recorded it.
/// </summary>
public sealed class UploadService(
    CaptureStore store,
    UploadRecords records,
    ServerCounters counters,
    UploadFailures failures,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<UploadService> logger) : Contracts.V1.Upload.UploadBase
{
    public override async Task<UploadStatus> GetUploadStatus(UploadStatusRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var probeId = StorableProbeId(context);
        try
        {
            var held = await store.GetHeldBytesAsync(probeId, request.Sha256, context.CancellationToken).ConfigureAwait(false);
            counters.Increment(UploadCounterNames.StatusQueries);
            return new UploadStatus { BytesHeld = (ulong)held.Bytes, Complete = held.Complete };
        }
        catch (UploadRejectedException e)
        {
            throw Refused(e);
        }
    }

    public override async Task<UploadAck> Upload(IAsyncStreamReader<UploadChunk> requestStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(context);
        var call = new Call(StorableProbeId(context), context.RemoteAddress());
        try
        {
            return await ReceiveAsync(call, requestStream, context.CancellationToken).ConfigureAwait(false);
        }
        catch (UploadRejectedException e)
        {
            // The server's own refusal (its disk below the floor) counts toward its health; a probe's bad request does not.
            if (e.Rejection == UploadRejection.ServerDiskLow)
                failures.Failed(call.ProbeId, UploadRejections.ServerDiskLow, $"{UploadRejections.ServerDiskLow}: {e.Message}");
            throw Refused(e);
        }
        catch (ProtocolViolationException e)
        {
            counters.Increment(UploadCounterNames.RejectedPrefix + UploadRejections.Protocol);
            UploadLog.ProtocolViolation(logger, call.ProbeId, call.Remote, e.Message);
            throw UploadStatusCodes.ProtocolViolation(e.Message);
        }
        catch (Exception e) when (e is ClientGoneException || context.CancellationToken.IsCancellationRequested)
        {
            // The client cancelled or its connection died: no one hears the status, the part file keeps what arrived.
            counters.Increment(UploadCounterNames.Interrupted);
            UploadLog.Interrupted(logger, call.Sha256, call.ProbeId, call.Remote, call.Received);
            // A status rather than the exception: an expected event, not an error for the framework to log.
            throw new RpcException(new Status(StatusCode.Cancelled, "the upload was interrupted; the bytes received are kept for resuming"));
        }
        catch (Exception e) when (e is not RpcException)
        {
            counters.Increment(UploadCounterNames.Failed);
            UploadLog.Failed(logger, e, call.Sha256, call.ProbeId, call.Remote);
            // The kind of error, not its message: that names the capture's file, which differs at every attempt.
            failures.Failed(call.ProbeId, $"{e.GetType().Name}/{e.HResult}", $"{e.GetType().Name}: {e.Message}");
            // Unavailable tells the probe to back off and retry: a new call resumes from what the store kept.
            throw new RpcException(new Status(StatusCode.Unavailable,
                "the server could not complete the upload; nothing was acknowledged and the bytes received are kept: retry later"));
        }
    }

    private async Task<UploadAck> ReceiveAsync(Call call, IAsyncStreamReader<UploadChunk> requests, CancellationToken cancellationToken)
    {
        if (!await NextAsync(requests, cancellationToken).ConfigureAwait(false))
            throw new ProtocolViolationException("the stream ended before the header");
        if (requests.Current.KindCase != UploadChunk.KindOneofCase.Header)
            throw new ProtocolViolationException("the first message must be the header");
        var header = ToStoreHeader(requests.Current.Header);
        call.Sha256 = header.Sha256;

        await using var session = await store.BeginAsync(call.ProbeId, header, cancellationToken).ConfigureAwait(false);
        counters.Add(UploadCounterNames.PartialUploadsEvicted, session.EvictedPartialUploads);
        var resumedAt = session.Offset;
        while (await NextAsync(requests, cancellationToken).ConfigureAwait(false))
        {
            var message = requests.Current;
            switch (message.KindCase)
            {
                case UploadChunk.KindOneofCase.Data:
                    // A duplicate needs no bytes; a probe that raced another attempt may still send some. Drop them.
                    if (session.IsDuplicate)
                        break;
                    if (message.Data.Offset > long.MaxValue)
                        throw new ProtocolViolationException($"chunk offset {message.Data.Offset} is out of range");
                    await session.WriteAsync((long)message.Data.Offset, message.Data.Data.Memory, cancellationToken).ConfigureAwait(false);
                    call.Received += message.Data.Data.Length;
                    counters.Add(UploadCounterNames.BytesReceived, message.Data.Data.Length);
                    break;

                case UploadChunk.KindOneofCase.Trailer:
                    // Not the call's token: once every byte is here, finish making the capture durable even if the
                    // probe hangs up, so its next status query finds it complete. Only shutdown stops the commit.
                    var stored = await session.CompleteAsync(message.Trailer.Sha256, lifetime.ApplicationStopping).ConfigureAwait(false);
                    Record(header, stored);
                    failures.Succeeded(call.ProbeId);
                    UploadLog.Acknowledged(logger, stored.Sha256, call.ProbeId, call.Remote, stored.Size, call.Received, resumedAt, stored.Duplicate);
                    return new UploadAck { Sha256 = stored.Sha256, StoredBytes = (ulong)stored.Size, Duplicate = stored.Duplicate };

                case UploadChunk.KindOneofCase.Header:
                    throw new ProtocolViolationException("a second header; one capture per call");

                default:
                    throw new ProtocolViolationException("an empty message");
            }
        }

        throw new ProtocolViolationException(
            $"the stream ended without a trailer; {session.Offset} of {session.Size} bytes are held: resume from GetUploadStatus.bytes_held");
    }

    /// <summary>The next message; a reset or cancelled request surfaces as <see cref="ClientGoneException"/>.</summary>
    private static async Task<bool> NextAsync(IAsyncStreamReader<UploadChunk> requests, CancellationToken cancellationToken)
    {
        try
        {
            return await requests.MoveNext(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // Kestrel reports a reset stream before the call's token is cancelled, so the token alone cannot tell.
            throw new ClientGoneException(e);
        }
    }

    private void Record(StoreHeader header, StoredCapture stored)
    {
        if (stored.Duplicate)
        {
            records.RecordDuplicate(new UploadRecord(0, stored.Sha256, stored.ProbeId, stored.Size,
                header.WindowStart, header.WindowEnd, time.GetUtcNow(), Duplicate: true, stored.Path));
            counters.Increment(UploadCounterNames.Duplicate);
        }
        else
        {
            // The sink recorded the stored row before CompleteAsync returned.
            counters.Increment(UploadCounterNames.Stored);
            counters.Add(UploadCounterNames.BytesStored, stored.Size);
        }
    }

    private RpcException Refused(UploadRejectedException rejection)
    {
        var refused = UploadStatusCodes.ToRpcException(rejection);
        counters.Increment(UploadCounterNames.RejectedPrefix + refused.Trailers.GetValue(UploadRejections.Trailer));
        return refused;
    }

    private static string StorableProbeId(ServerCallContext context)
    {
        var probeId = context.GetProbeIdentity().ProbeId;
        // Probe ids the server issues always qualify; this guards the folder name should that ever change.
        return CaptureStore.IsValidProbeId(probeId) ? probeId
            : throw new RpcException(new Status(StatusCode.PermissionDenied, $"probe id '{probeId}' cannot hold captures"));
    }

    private static StoreHeader ToStoreHeader(WireHeader header)
    {
        if (header.WindowStart is null || header.WindowEnd is null)
            throw new UploadRejectedException(UploadRejection.InvalidHeader, "window_start and window_end are required");
        if (header.Size > long.MaxValue)
            throw new UploadRejectedException(UploadRejection.TooLarge, $"declared size {header.Size} is out of range");
        try
        {
            return new StoreHeader(header.Sha256, (long)header.Size, header.WindowStart.ToDateTimeOffset(), header.WindowEnd.ToDateTimeOffset(), header.ManifestJson);
        }
        catch (InvalidOperationException e)
        {
            throw new UploadRejectedException(UploadRejection.InvalidHeader, "the capture window is not a valid timestamp: " + e.Message);
        }
    }

    /// <summary>What is known of a call so far, for its log lines.</summary>
    private sealed class Call(string probeId, string remote)
    {
        public string ProbeId { get; } = probeId;

        public string Remote { get; } = remote;

        public string Sha256 { get; set; } = "(no header)";

        public long Received { get; set; }
    }

    /// <summary>The request stream is not header, data..., trailer.</summary>
    private sealed class ProtocolViolationException(string message) : Exception(message);

    /// <summary>The request stream broke off: the client cancelled or its connection died.</summary>
    private sealed class ClientGoneException(Exception inner) : Exception("the client went away", inner);
}

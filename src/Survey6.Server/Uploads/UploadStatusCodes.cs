using System.Globalization;
using Grpc.Core;
using Survey6.Contracts;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// How a refused upload is reported over gRPC (docs/protocol.md, "Upload errors"): a status code a client can act
/// on, a detail for people, and trailers for programs (their names and values: <see cref="UploadRejections"/>).
/// </summary>
public static class UploadStatusCodes
{
    /// <summary>The status for a store rejection, with its name (and expected offset, if any) in trailers.</summary>
    public static RpcException ToRpcException(UploadRejectedException rejection)
    {
        ArgumentNullException.ThrowIfNull(rejection);
        var busy = rejection.Rejection == UploadRejection.ChunkSequence && rejection.ExpectedOffset is null;
        var name = busy ? UploadRejections.Busy : UploadRejections.Name(rejection.Rejection);
        var code = busy ? StatusCode.Aborted : Code(rejection.Rejection);
        var trailers = new Metadata { { UploadRejections.Trailer, name } };
        if (rejection.ExpectedOffset is { } expected)
            trailers.Add(UploadRejections.ExpectedOffsetTrailer, expected.ToString(CultureInfo.InvariantCulture));
        return new RpcException(new Status(code, $"upload refused: {name}: {rejection.Message}"), trailers);
    }

    /// <summary>A request stream that is not header, data..., trailer.</summary>
    public static RpcException ProtocolViolation(string detail) =>
        new(new Status(StatusCode.InvalidArgument, $"upload refused: {UploadRejections.Protocol}: {detail}"),
            new Metadata { { UploadRejections.Trailer, UploadRejections.Protocol } });

    /// <summary>
    /// The code for each rejection. Retrying the same bytes cannot help with InvalidArgument; FailedPrecondition means
    /// the server's copy and the claim disagree (for digest-mismatch the held bytes are gone: send the whole file again);
    /// OutOfRange carries the offset to continue from; ResourceExhausted lasts until an operator acts; Unavailable
    /// passes on its own (the probe's other uploads finish, or the disk gets space), so the probe retries.
    /// </summary>
    public static StatusCode Code(UploadRejection rejection) => rejection switch
    {
        UploadRejection.InvalidSha or UploadRejection.InvalidHeader or UploadRejection.NotACapture => StatusCode.InvalidArgument,
        UploadRejection.TooLarge or UploadRejection.QuotaExceeded => StatusCode.ResourceExhausted,
        UploadRejection.ChunkSequence => StatusCode.OutOfRange,
        UploadRejection.SizeMismatch or UploadRejection.DigestMismatch => StatusCode.FailedPrecondition,
        UploadRejection.PartialUploadLimit or UploadRejection.ServerDiskLow => StatusCode.Unavailable,
        _ => StatusCode.InvalidArgument,
    };
}

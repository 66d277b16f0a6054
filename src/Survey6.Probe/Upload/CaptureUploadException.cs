using Grpc.Core;
using Survey6.Contracts.V1;

namespace Survey6.Probe.Upload;

/// <summary>
/// A capture that was not acknowledged. The file is untouched: keep it. <see cref="IsTransient"/> says whether a
/// later attempt may succeed as things are (the server was unreachable or busy) or something must change first
/// (the server refused the file: <see cref="Rejection"/> names why).
/// </summary>
public sealed class CaptureUploadException : Exception
{
    public CaptureUploadException()
    {
    }

    public CaptureUploadException(string message)
        : base(message)
    {
    }

    public CaptureUploadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CaptureUploadException(string message, StatusCode statusCode, string? rejection, bool isTransient, int attempts, Exception? innerException = null)
        : base(message, innerException)
    {
        StatusCode = statusCode;
        Rejection = rejection;
        IsTransient = isTransient;
        Attempts = attempts;
    }

    /// <summary>The gRPC status of the last attempt.</summary>
    public StatusCode StatusCode { get; } = StatusCode.Unknown;

    /// <summary>The server's <see cref="Contracts.UploadRejections.Trailer"/> trailer (too-large, not-a-capture, ...), if it refused the upload.</summary>
    public string? Rejection { get; }

    public bool IsTransient { get; }

    public int Attempts { get; }
}

/// <summary>An acknowledged upload: the server holds the capture durably and has queued it. Only now may the file go.</summary>
/// <param name="Ack">The server's acknowledgement; <see cref="UploadAck.Duplicate"/> when it already had the capture.</param>
/// <param name="Path">The uploaded file.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="ResumedFrom">Where the successful attempt started sending: the bytes the server already held then (the whole size when it had the capture).</param>
/// <param name="BytesSent">Data bytes sent over all attempts.</param>
/// <param name="Attempts">Calls made, the successful one included.</param>
public sealed record CaptureUploadResult(UploadAck Ack, string Path, long Size, long ResumedFrom, long BytesSent, int Attempts);

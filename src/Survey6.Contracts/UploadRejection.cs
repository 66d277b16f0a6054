namespace Survey6.Contracts;

/// <summary>
/// Why the server refused an upload (docs/protocol.md, "Upload errors"). Values are stable; on the wire each travels
/// by its name (<see cref="UploadRejections.Name"/>) in the <see cref="UploadRejections.Trailer"/> trailer.
/// </summary>
public enum UploadRejection
{
    /// <summary>A SHA-256 (header or trailer) is not 64 hexadecimal digits.</summary>
    InvalidSha = 1,

    /// <summary>The header is malformed: negative size, window end before its start, a manifest that is not a valid capture manifest or too long.</summary>
    InvalidHeader = 2,

    /// <summary>The declared size exceeds the server's largest capture.</summary>
    TooLarge = 3,

    /// <summary>Storing the capture would take the probe past its quota.</summary>
    QuotaExceeded = 4,

    /// <summary>A chunk does not start where the held bytes end, or another session is uploading the same capture.</summary>
    ChunkSequence = 5,

    /// <summary>A chunk would run past the declared size, the upload was completed short of it, or a duplicate's size differs.</summary>
    SizeMismatch = 6,

    /// <summary>The bytes received do not hash to the declared SHA-256 (or the trailer disagrees). The partial upload is deleted.</summary>
    DigestMismatch = 7,

    /// <summary>The content is not a readable pcap or pcapng file. The partial upload is deleted.</summary>
    NotACapture = 8,

    /// <summary>The probe already has as many partial uploads as it may keep, every one of them in progress; retry later.</summary>
    PartialUploadLimit = 9,

    /// <summary>The server's disk is at its free-space floor; retry later. Nothing of this upload was kept.</summary>
    ServerDiskLow = 10,
}

/// <summary>The names and trailers by which the server tells a probe why it refused an upload; the probe acts on them.</summary>
public static class UploadRejections
{
    /// <summary>Trailer naming the refusal: one of the names below.</summary>
    public const string Trailer = "survey6-rejection";

    /// <summary>Trailer with the offset the next chunk must start at, when the server knows it.</summary>
    public const string ExpectedOffsetTrailer = "survey6-expected-offset";

    public const string InvalidSha = "invalid-sha";
    public const string InvalidHeader = "invalid-header";
    public const string TooLarge = "too-large";
    public const string QuotaExceeded = "quota-exceeded";
    public const string ChunkSequence = "chunk-sequence";
    public const string SizeMismatch = "size-mismatch";
    public const string DigestMismatch = "digest-mismatch";
    public const string NotACapture = "not-a-capture";
    public const string PartialUploadLimit = "partial-upload-limit";
    public const string ServerDiskLow = "server-disk-low";

    /// <summary>The request stream broke the header, data, trailer order.</summary>
    public const string Protocol = "protocol";

    /// <summary>Another upload of the same capture holds it (a chunk-sequence refusal without an expected offset).</summary>
    public const string Busy = "busy";

    /// <summary>The trailer value for <paramref name="rejection"/>.</summary>
    public static string Name(UploadRejection rejection) => rejection switch
    {
        UploadRejection.InvalidSha => InvalidSha,
        UploadRejection.InvalidHeader => InvalidHeader,
        UploadRejection.TooLarge => TooLarge,
        UploadRejection.QuotaExceeded => QuotaExceeded,
        UploadRejection.ChunkSequence => ChunkSequence,
        UploadRejection.SizeMismatch => SizeMismatch,
        UploadRejection.DigestMismatch => DigestMismatch,
        UploadRejection.NotACapture => NotACapture,
        UploadRejection.PartialUploadLimit => PartialUploadLimit,
        UploadRejection.ServerDiskLow => ServerDiskLow,
        _ => "rejected",
    };
}

namespace Survey6.Server.Storage;

/// <summary>Why the store refused an upload. Values are stable: transports map them to their own error codes.</summary>
public enum UploadRejection
{
    /// <summary>A SHA-256 (header or trailer) is not 64 hexadecimal digits.</summary>
    InvalidSha = 1,

    /// <summary>The header is malformed: negative size, window end before its start, manifest not a JSON object or too long.</summary>
    InvalidHeader = 2,

    /// <summary>The declared size exceeds <see cref="CaptureStoreOptions.MaxCaptureBytes"/>.</summary>
    TooLarge = 3,

    /// <summary>Storing the capture would take the probe past <see cref="CaptureStoreOptions.ProbeQuotaBytes"/>.</summary>
    QuotaExceeded = 4,

    /// <summary>
    /// A chunk does not start where the held bytes end (<see cref="UploadRejectedException.ExpectedOffset"/> says where),
    /// or another session is uploading the same capture.
    /// </summary>
    ChunkSequence = 5,

    /// <summary>A chunk would run past the declared size, the upload was completed short of it, or a duplicate's size differs.</summary>
    SizeMismatch = 6,

    /// <summary>The bytes received do not hash to the declared SHA-256 (or the trailer disagrees). The partial upload is deleted.</summary>
    DigestMismatch = 7,

    /// <summary>The content is not a readable pcap or pcapng file (see <see cref="UploadRejectedException.ContentOffset"/>). The partial upload is deleted.</summary>
    NotACapture = 8,
}

/// <summary>An upload the store refuses, with a machine-readable reason.</summary>
public sealed class UploadRejectedException : Exception
{
    public UploadRejectedException()
        : this(UploadRejection.InvalidHeader, "The upload was rejected.")
    {
    }

    public UploadRejectedException(string message)
        : this(UploadRejection.InvalidHeader, message)
    {
    }

    public UploadRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Rejection = UploadRejection.InvalidHeader;
    }

    public UploadRejectedException(UploadRejection rejection, string message, long? contentOffset = null, long? expectedOffset = null)
        : base(message)
    {
        Rejection = rejection;
        ContentOffset = contentOffset;
        ExpectedOffset = expectedOffset;
    }

    /// <summary>The reason.</summary>
    public UploadRejection Rejection { get; }

    /// <summary><see cref="UploadRejection.NotACapture"/>: byte offset in the file where reading stopped.</summary>
    public long? ContentOffset { get; }

    /// <summary><see cref="UploadRejection.ChunkSequence"/>: the offset the next chunk must start at, when one session is in sequence error.</summary>
    public long? ExpectedOffset { get; }
}

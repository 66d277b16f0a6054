using Survey6.Contracts;

namespace Survey6.Server.Storage;

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

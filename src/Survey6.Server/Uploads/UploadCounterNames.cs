namespace Survey6.Server.Uploads;

/// <summary>Names of the upload service's <see cref="Diagnostics.ServerCounters"/>.</summary>
public static class UploadCounterNames
{
    /// <summary>Uploads acknowledged that stored a new capture.</summary>
    public const string Stored = "upload.stored";

    /// <summary>Uploads acknowledged as duplicates of a capture already stored.</summary>
    public const string Duplicate = "upload.duplicate";

    /// <summary>Data bytes received and written, over all calls (resumed ones included).</summary>
    public const string BytesReceived = "upload.bytes_received";

    /// <summary>Sizes of newly stored captures.</summary>
    public const string BytesStored = "upload.bytes_stored";

    /// <summary>Followed by the rejection name: <c>upload.rejected.digest-mismatch</c>, <c>upload.rejected.protocol</c>, ...</summary>
    public const string RejectedPrefix = "upload.rejected.";

    /// <summary>Calls the client ended (or lost) before the trailer; their bytes stay for resuming.</summary>
    public const string Interrupted = "upload.interrupted";

    /// <summary>Calls that failed on the server (I/O, the queue, the database); nothing was acknowledged.</summary>
    public const string Failed = "upload.failed";

    /// <summary>GetUploadStatus calls answered.</summary>
    public const string StatusQueries = "upload.status_queries";

    /// <summary>Idle partial uploads deleted to keep a probe within <c>MaxPartialUploadsPerProbe</c>.</summary>
    public const string PartialUploadsEvicted = "upload.partial_evicted";

    /// <summary>Sweeps for partial uploads untouched for <c>AbandonedUploadAge</c>, while the server runs.</summary>
    public const string AbandonedSweeps = "upload.abandoned_sweeps";

    /// <summary>Partial uploads those sweeps deleted.</summary>
    public const string AbandonedDeleted = "upload.abandoned_deleted";
}

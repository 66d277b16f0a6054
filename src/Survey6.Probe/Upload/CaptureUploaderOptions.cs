using Microsoft.Extensions.Options;

namespace Survey6.Probe.Upload;

/// <summary>Settings of a <see cref="CaptureUploader"/>; checked by <see cref="CaptureUploaderOptionsValidator"/>.</summary>
public sealed class CaptureUploaderOptions
{
    /// <summary>Bytes per data message. The server accepts messages up to 4 MiB.</summary>
    public int ChunkBytes { get; set; } = 256 << 10;

    /// <summary>Attempts per <see cref="CaptureUploader.UploadAsync"/>, the first included, before a transient failure is given up on.</summary>
    public int MaxAttempts { get; set; } = 8;

    /// <summary>Wait before the second attempt; doubled for each further one up to <see cref="MaxBackoff"/>, with jitter.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// An attempt that makes no progress for this long (a status query unanswered, a chunk not accepted, the
    /// acknowledgement not arriving) is abandoned and retried. The acknowledgement waits for the server to check and
    /// sync the whole file, so allow for that on large captures.
    /// </summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromMinutes(2);
}

public sealed class CaptureUploaderOptionsValidator : IValidateOptions<CaptureUploaderOptions>
{
    /// <summary>Leaves room for the message framing under the server's 4 MiB message limit.</summary>
    public const int MaxChunkBytes = 3 << 20;

    public ValidateOptionsResult Validate(string? name, CaptureUploaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.ChunkBytes is < 1024 or > MaxChunkBytes)
            failures.Add($"ChunkBytes must be between 1024 and {MaxChunkBytes} (is {options.ChunkBytes}).");
        if (options.MaxAttempts is < 1 or > 1000)
            failures.Add($"MaxAttempts must be between 1 and 1000 (is {options.MaxAttempts}).");
        if (options.InitialBackoff < TimeSpan.FromMilliseconds(1) || options.InitialBackoff > TimeSpan.FromHours(1))
            failures.Add($"InitialBackoff must be between 1 ms and 1 h (is {options.InitialBackoff}).");
        if (options.MaxBackoff < options.InitialBackoff || options.MaxBackoff > TimeSpan.FromHours(1))
            failures.Add($"MaxBackoff must be between InitialBackoff and 1 h (is {options.MaxBackoff}).");
        if (options.StallTimeout < TimeSpan.FromSeconds(1) || options.StallTimeout > TimeSpan.FromHours(1))
            failures.Add($"StallTimeout must be between 1 s and 1 h (is {options.StallTimeout}).");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

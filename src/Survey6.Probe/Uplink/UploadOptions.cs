using Microsoft.Extensions.Options;

namespace Survey6.Probe.Uplink;

/// <summary>When and how fast the spool is uploaded; section <c>Probe:Upload</c>.</summary>
public sealed class UploadOptions
{
    public const string SectionName = "Probe:Upload";

    /// <summary>
    /// The capture interfaces count as idle below this many bytes per second (rx + tx, without the upload's own
    /// bytes); 0 uploads at once, without waiting for an idle link.
    /// </summary>
    public long IdleBytesPerSecond { get; set; } = 1_000_000;

    /// <summary>How long the interfaces must stay idle before an upload starts.</summary>
    public TimeSpan QuietPeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A file waiting longer than this for an idle link is uploaded anyway (at <see cref="MaxBytesPerSecond"/>).</summary>
    public TimeSpan MaxDeferral { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Upload rate cap; 0 for none. A policy's <c>upload_max_bytes_per_second</c> replaces it.</summary>
    public long MaxBytesPerSecond { get; set; } = 10_000_000;

    /// <summary>How often the interface counters are read.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Wait after a failed upload before the spool is offered again.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Uploads failing for longer than this (no file acknowledged since the first failure) make the probe degraded, with
    /// the last error as the reason, in <c>probe status</c> and its heartbeats; the next acknowledged file clears it.
    /// </summary>
    public TimeSpan DegradedAfter { get; set; } = TimeSpan.FromMinutes(30);
}

internal sealed class UploadOptionsValidator : IValidateOptions<UploadOptions>
{
    public ValidateOptionsResult Validate(string? name, UploadOptions options)
    {
        var errors = new List<string>();
        if (options.IdleBytesPerSecond < 0)
            errors.Add("Probe:Upload:IdleBytesPerSecond must be 0 or more");
        if (options.QuietPeriod < TimeSpan.Zero || options.QuietPeriod > TimeSpan.FromHours(24))
            errors.Add("Probe:Upload:QuietPeriod must be 0..24 h");
        if (options.MaxDeferral < TimeSpan.Zero || options.MaxDeferral > TimeSpan.FromDays(30))
            errors.Add("Probe:Upload:MaxDeferral must be 0..30 days");
        if (options.MaxBytesPerSecond < 0)
            errors.Add("Probe:Upload:MaxBytesPerSecond must be 0 (no cap) or more");
        if (options.SampleInterval < TimeSpan.FromMilliseconds(100) || options.SampleInterval > TimeSpan.FromMinutes(1))
            errors.Add("Probe:Upload:SampleInterval must be 100 ms..1 min");
        if (options.RetryDelay < TimeSpan.FromMilliseconds(100) || options.RetryDelay > TimeSpan.FromHours(1))
            errors.Add("Probe:Upload:RetryDelay must be 100 ms..1 h");
        if (options.DegradedAfter < TimeSpan.FromSeconds(1) || options.DegradedAfter > TimeSpan.FromDays(7))
            errors.Add("Probe:Upload:DegradedAfter must be 1 s..7 days");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

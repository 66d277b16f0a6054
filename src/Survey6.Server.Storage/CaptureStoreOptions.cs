using Microsoft.Extensions.Options;

namespace Survey6.Server.Storage;

/// <summary>Settings of a <see cref="CaptureStore"/>; checked by <see cref="CaptureStoreOptionsValidator"/>.</summary>
public sealed class CaptureStoreOptions
{
    /// <summary>Root of the store (<c>DATA</c>): holds <c>captures/</c> and <c>incoming/</c>.</summary>
    public string DataDirectory { get; set; } = string.Empty;

    /// <summary>Largest capture accepted, in bytes.</summary>
    public long MaxCaptureBytes { get; set; } = 1L << 30;

    /// <summary>Bytes one probe may occupy: its stored captures with their manifests plus its partial uploads at their declared sizes.</summary>
    public long ProbeQuotaBytes { get; set; } = 200L << 30;

    /// <summary>Longest probe manifest accepted, in bytes of UTF-8.</summary>
    public long MaxManifestBytes { get; set; } = 64 << 10;

    /// <summary>
    /// How long a second session for a capture waits for the first to end before it is refused. A reconnecting
    /// probe often arrives before the server has noticed that its previous connection died.
    /// </summary>
    public TimeSpan SessionWaitTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A partial upload untouched for this long is deleted, at start (<see cref="CaptureStore.RecoverAsync"/>) and
    /// every <see cref="AbandonedUploadSweepInterval"/> while the server runs (<see cref="CaptureStore.ExpireAbandonedAsync"/>).
    /// </summary>
    public TimeSpan AbandonedUploadAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often the running server looks for partial uploads older than <see cref="AbandonedUploadAge"/>.</summary>
    public TimeSpan AbandonedUploadSweepInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Partial uploads one probe may keep in <c>incoming/</c>. A new upload beyond it deletes the probe's partial upload
    /// that was idle longest; when all are in progress it is refused (<c>partial-upload-limit</c>). A probe sends one
    /// capture at a time, so a few cover its interrupted ones.
    /// </summary>
    public int MaxPartialUploadsPerProbe { get; set; } = 16;

    /// <summary>
    /// Free bytes the data directory's file system keeps: an upload that would leave less is refused
    /// (<c>server-disk-low</c>, a transient refusal: the probe keeps its file and retries). 0 turns the floor off.
    /// </summary>
    public long MinFreeDiskBytes { get; set; } = 1L << 30;

    /// <summary>How far after the server's clock a capture window may start: the probe's clock may be somewhat ahead.</summary>
    public TimeSpan MaxWindowAhead { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How far before the server's clock a capture window may start: a probe offline for long still uploads its spool.</summary>
    public TimeSpan MaxWindowAge { get; set; } = TimeSpan.FromDays(5 * 365);
}

/// <summary>Rejects settings the store cannot work with.</summary>
public sealed class CaptureStoreOptionsValidator : IValidateOptions<CaptureStoreOptions>
{
    /// <summary>Upper bound for <see cref="CaptureStoreOptions.MaxManifestBytes"/>: manifests are read whole into memory.</summary>
    public const long ManifestLimit = 16 << 20;

    /// <summary>Upper bound for <see cref="CaptureStoreOptions.SessionWaitTimeout"/>: longer stalls an upload stream for nothing.</summary>
    public static readonly TimeSpan SessionWaitLimit = TimeSpan.FromMinutes(10);

    public ValidateOptionsResult Validate(string? name, CaptureStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.DataDirectory))
            failures.Add("DataDirectory must be set.");
        if (options.MaxCaptureBytes <= 0)
            failures.Add($"MaxCaptureBytes must be positive (is {options.MaxCaptureBytes}).");
        if (options.ProbeQuotaBytes < options.MaxCaptureBytes)
            failures.Add($"ProbeQuotaBytes ({options.ProbeQuotaBytes}) must be at least MaxCaptureBytes ({options.MaxCaptureBytes}).");
        if (options.MaxManifestBytes <= 0 || options.MaxManifestBytes > ManifestLimit)
            failures.Add($"MaxManifestBytes must be between 1 and {ManifestLimit} (is {options.MaxManifestBytes}).");
        if (options.SessionWaitTimeout < TimeSpan.Zero || options.SessionWaitTimeout > SessionWaitLimit)
            failures.Add($"SessionWaitTimeout must be between 0 and {SessionWaitLimit} (is {options.SessionWaitTimeout}).");
        if (options.AbandonedUploadAge <= TimeSpan.Zero)
            failures.Add($"AbandonedUploadAge must be positive (is {options.AbandonedUploadAge}).");
        if (options.AbandonedUploadSweepInterval <= TimeSpan.Zero)
            failures.Add($"AbandonedUploadSweepInterval must be positive (is {options.AbandonedUploadSweepInterval}).");
        if (options.MaxPartialUploadsPerProbe < 1)
            failures.Add($"MaxPartialUploadsPerProbe must be at least 1 (is {options.MaxPartialUploadsPerProbe}).");
        if (options.MinFreeDiskBytes < 0)
            failures.Add($"MinFreeDiskBytes must not be negative (is {options.MinFreeDiskBytes}).");
        if (options.MaxWindowAhead <= TimeSpan.Zero)
            failures.Add($"MaxWindowAhead must be positive (is {options.MaxWindowAhead}).");
        if (options.MaxWindowAge <= TimeSpan.Zero)
            failures.Add($"MaxWindowAge must be positive (is {options.MaxWindowAge}).");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

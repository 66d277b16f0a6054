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

    /// <summary>A partial upload untouched for this long is deleted by <see cref="CaptureStore.RecoverAsync"/>.</summary>
    public TimeSpan AbandonedUploadAge { get; set; } = TimeSpan.FromDays(7);
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
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

using System.ComponentModel;
using System.Globalization;
using Microsoft.Extensions.Options;

namespace Survey6.Probe.Spool;

/// <summary>What the disk guard does when the spool reaches its limits.</summary>
[TypeConverter(typeof(DiskPolicyConverter))]
public enum DiskPolicy
{
    /// <summary>Delete the oldest closed files (counted and reported): newest data wins.</summary>
    EvictOldest,

    /// <summary>Keep every file and stop writing (frames counted as disk drops) until uploads free space.</summary>
    PauseCapture,
}

/// <summary>Spool files and the disk guard; section <c>Probe:Spool</c>.</summary>
public sealed class SpoolOptions
{
    public const string SectionName = "Probe:Spool";

    /// <summary>
    /// Room kept for closing a file (its statistics blocks, its manifest, file-system rounding), so a
    /// file can always be closed cleanly when the guard trips.
    /// </summary>
    public const long CloseReserveBytes = 64L << 10;

    /// <summary>Where capture files are spooled; empty means <c>spool</c> in the state directory.</summary>
    public string Directory { get; set; } = "";

    /// <summary>A file is closed before it would grow past this size...</summary>
    public long RotateSizeBytes { get; set; } = 64L << 20;

    /// <summary>...or once it has been open this long, whichever comes first.</summary>
    public TimeSpan RotateAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Closed files plus the open one never take more than this.</summary>
    public long MaxSpoolBytes { get; set; } = 4L << 30;

    /// <summary>The spool never lets the file system's free space fall below this.</summary>
    public long MinFreeDiskBytes { get; set; } = 512L << 20;

    /// <summary><c>evict-oldest</c> (default) or <c>pause-capture</c>.</summary>
    public DiskPolicy DiskPolicy { get; set; } = DiskPolicy.EvictOldest;

    /// <summary>How often free space is measured, idle files are flushed and rotated by age, and a paused spool looks for room.</summary>
    public TimeSpan GuardInterval { get; set; } = TimeSpan.FromSeconds(1);

    public static string PolicyName(DiskPolicy policy) => policy == DiskPolicy.PauseCapture ? "pause-capture" : "evict-oldest";
}

internal sealed class SpoolOptionsValidator : IValidateOptions<SpoolOptions>
{
    public ValidateOptionsResult Validate(string? name, SpoolOptions options)
    {
        var errors = new List<string>();
        if (options.RotateSizeBytes is < 16L << 10 or > 4L << 30)
            errors.Add("Probe:Spool:RotateSizeBytes must be 16 KiB..4 GiB");
        if (options.RotateAge < TimeSpan.FromSeconds(1) || options.RotateAge > TimeSpan.FromDays(1))
            errors.Add("Probe:Spool:RotateAge must be 1 s..1 day");
        if (options.MaxSpoolBytes < 2 * options.RotateSizeBytes + 2 * SpoolOptions.CloseReserveBytes)
            errors.Add("Probe:Spool:MaxSpoolBytes must hold at least two full files (2 x RotateSizeBytes + 128 KiB)");
        if (options.MinFreeDiskBytes < 0)
            errors.Add("Probe:Spool:MinFreeDiskBytes must not be negative");
        if (options.GuardInterval < TimeSpan.FromMilliseconds(50) || options.GuardInterval > TimeSpan.FromMinutes(1))
            errors.Add("Probe:Spool:GuardInterval must be 50 ms..1 min");
        if (!Enum.IsDefined(options.DiskPolicy))
            errors.Add("Probe:Spool:DiskPolicy must be evict-oldest or pause-capture");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Lets configuration say <c>evict-oldest</c> / <c>pause-capture</c> as the docs do.</summary>
public sealed class DiskPolicyConverter : EnumConverter
{
    public DiskPolicyConverter()
        : base(typeof(DiskPolicy))
    {
    }

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is string text)
        {
            switch (text.Trim().Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToUpperInvariant())
            {
                case "EVICTOLDEST":
                    return DiskPolicy.EvictOldest;
                case "PAUSECAPTURE":
                    return DiskPolicy.PauseCapture;
                default:
                    throw new FormatException($"'{text}' is not a disk policy: use evict-oldest or pause-capture");
            }
        }

        return base.ConvertFrom(context, culture, value);
    }
}

using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Options;

/// <summary>
/// The free space the server keeps on its data directory's file system, section <c>Server:Disk</c>. Below
/// <see cref="MinFreeBytes"/> the server reports itself degraded (health, <c>/healthz</c>, <c>server probes</c>,
/// <c>/metrics</c>); the upload path can refuse new captures at the same floor, so both read this one setting.
/// </summary>
public sealed class DiskFloorOptions
{
    public const string SectionName = "Server:Disk";

    /// <summary>Bytes that must stay free on the data directory's file system (default 256 MiB).</summary>
    [Range(0, long.MaxValue)]
    public long MinFreeBytes { get; set; } = 256L << 20;
}

using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Uploads;

/// <summary>
/// When uploads that fail on the server's side (disk write errors, the ingest queue down, the free-disk floor) make the
/// server degraded, and how often a lasting failure is logged again; section <c>Server:Uploads:Failures</c>.
/// </summary>
public sealed class UploadFailureOptions
{
    public const string SectionName = UploadHostingExtensions.SectionName + ":Failures";

    /// <summary>Degraded after this many uploads in a row failed on the server, until the next one is acknowledged.</summary>
    [Range(1, 1_000_000)]
    public int DegradedAfter { get; set; } = 3;

    /// <summary>A failure that lasts (same probe, same cause) is logged again with its count this often, not at every attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan LogInterval { get; set; } = TimeSpan.FromMinutes(10);
}

using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Options;

/// <summary>Join attempts allowed per source (IPv4 address or IPv6 /64) within a sliding window; section <c>Server:JoinRateLimit</c>.</summary>
public sealed class JoinRateLimitOptions
{
    public const string SectionName = "Server:JoinRateLimit";

    [Range(1, 1_000_000)]
    public int PermitLimit { get; set; } = 10;

    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
}

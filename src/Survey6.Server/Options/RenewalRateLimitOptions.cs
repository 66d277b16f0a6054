using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Options;

/// <summary>
/// Certificate renewals allowed per probe within a sliding window; section <c>Server:RenewalRateLimit</c>. A probe
/// renews once per certificate lifetime (and retries every few minutes after a failure), so the default leaves room
/// for retries while stopping a stolen key from minting certificates in bulk.
/// </summary>
public sealed class RenewalRateLimitOptions
{
    public const string SectionName = "Server:RenewalRateLimit";

    [Range(1, 1_000_000)]
    public int PermitLimit { get; set; } = 6;

    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan Window { get; set; } = TimeSpan.FromHours(1);
}

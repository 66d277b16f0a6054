using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Housekeeping;

/// <summary>How long finished records stay in state.db; section <c>Server:Housekeeping</c>.</summary>
public sealed class HousekeepingOptions
{
    public const string SectionName = "Server:Housekeeping";

    /// <summary>
    /// A join token that can no longer be used (expired, revoked or used up) is deleted this long
    /// after it stopped being usable. Until then `token list` shows it and a join with it is refused
    /// with its reason; after that, as unknown. Probes keep the id of the token they joined with.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00")]
    public TimeSpan TokenRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// A command is deleted this long after the probe answered it, or after it was issued if its
    /// probe is revoked and never answered. Commands a live probe has not answered are kept: they
    /// are still to be delivered.
    /// </summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan CommandRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How often the sweep runs (the first run is at start).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);
}

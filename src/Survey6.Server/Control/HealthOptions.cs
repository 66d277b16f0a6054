using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Control;

/// <summary>When a probe counts as degraded, offline or inactive, and how long its history is kept; section <c>Server:Health</c>.</summary>
public sealed class HealthOptions
{
    public const string SectionName = "Server:Health";

    /// <summary>Degraded when more than this fraction of frames was dropped (kernel, interface and queue) since the previous heartbeat.</summary>
    [Range(0.0, 1.0)]
    public double MaxDropRatio { get; set; } = 0.01;

    /// <summary>Degraded when the oldest spooled file waiting for upload is older than this.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "365.00:00:00")]
    public TimeSpan MaxUploadBacklogAge { get; set; } = TimeSpan.FromHours(36);

    /// <summary>Degraded when the spool's file system has less free space than this.</summary>
    [Range(0, long.MaxValue)]
    public long MinFreeDiskBytes { get; set; } = 1L << 30;

    /// <summary>Degraded when the probe's clock is off the server's by more than this either way.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Offline after this many heartbeat intervals without a heartbeat.</summary>
    [Range(2, 20)]
    public int OfflineAfterIntervals { get; set; } = 3;

    /// <summary>Inactive after this long without a heartbeat.</summary>
    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan InactiveAfter { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How often the evaluator looks for probes that went silent.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan EvaluationInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Per-minute heartbeat rollups older than this are deleted.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan HistoryRetention { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>The control stream's own settings; section <c>Server:Control</c>.</summary>
public sealed class ControlOptions
{
    public const string SectionName = "Server:Control";

    /// <summary>
    /// How often the server looks in state.db for commands and revocations made by another process
    /// (the CLI). Commands issued inside the server reach a connected probe at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan ExternalChangePollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A heartbeat sooner than this after the previous one on the same stream is acknowledged but
    /// not recorded, so a probe cannot turn heartbeats into a write load (policies allow 1 s at least).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan MinHeartbeatSpacing { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Heartbeats are acknowledged from memory and written to state.db in batches, one transaction
    /// each; the writer waits this long after the first heartbeat of a batch for more to arrive.
    /// Queries and the evaluator do not wait: they have the writer flush first.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:01")]
    public TimeSpan HeartbeatBatchDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Most heartbeats written in one transaction.</summary>
    [Range(1, 100_000)]
    public int MaxHeartbeatBatch { get; set; } = 2000;

    /// <summary>
    /// Heartbeats waiting to be written, at most; beyond this they are acknowledged but not
    /// stored (counted as <c>control.heartbeats.dropped</c> and logged). A later heartbeat of the
    /// same probe carries its counters, so only the rollup's heartbeat count loses one.
    /// </summary>
    [Range(100, 10_000_000)]
    public int HeartbeatQueueCapacity { get; set; } = 100_000;
}

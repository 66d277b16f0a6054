namespace Survey6.Probe.Daemon;

/// <summary>What <c>survey6 probe status</c> shows and heartbeats report; counters are cumulative since the process started.</summary>
public sealed record ProbeStatus
{
    public const string Capturing = "capturing";
    public const string Suspended = "suspended";
    public const string Degraded = "degraded";
    public const string Starting = "starting";
    public const string Stopped = "stopped";

    public string ProbeId { get; init; } = "";

    public bool Joined { get; init; }

    /// <summary>capturing, suspended, degraded (capture failed, the disk guard holds frames back, or uploads keep failing), starting, stopped.</summary>
    public string State { get; init; } = Stopped;

    public string? StateReason { get; init; }

    public DateTimeOffset StateSince { get; init; }

    public DateTimeOffset Now { get; init; }

    public string Version { get; init; } = "";

    public IReadOnlyList<string> Interfaces { get; init; } = [];

    /// <summary>The filter libpcap applies: the one in force (<see cref="PolicyStatus.Filter"/>) with the probe's own traffic taken out.</summary>
    public string Filter { get; init; } = "";

    public int SnapLength { get; init; }

    /// <summary>The probe's traffic with its C&amp;C and whether the capture leaves it out; null when not joined.</summary>
    public Capture.OwnTrafficStatus? OwnTraffic { get; init; }

    public CaptureStatus Capture { get; init; } = new();

    public SpoolStatus Spool { get; init; } = new();

    /// <summary>Null until an uploader is part of the daemon.</summary>
    public UploaderSnapshot? Upload { get; init; }

    /// <summary>The policy in force (null in status built without a daemon).</summary>
    public PolicyStatus? Policy { get; init; }
}

/// <summary>The policy in force and what it makes the probe do (the configuration fills what the policy leaves open).</summary>
public sealed record PolicyStatus
{
    public long Version { get; init; }

    /// <summary>join (the policy received at join) or server (an update applied since).</summary>
    public string Source { get; init; } = "join";

    public DateTimeOffset? AppliedAt { get; init; }

    /// <summary>The policy ran healthy long enough to be the fall back of a later crash loop.</summary>
    public bool Proven { get; init; }

    public IReadOnlyList<string> Interfaces { get; init; } = [];

    /// <summary>The filter in force (configuration or policy), before the probe's own traffic is taken out.</summary>
    public string Filter { get; init; } = "";

    public int SnapLength { get; init; }

    public long RotateSizeBytes { get; init; }

    public double RotateAgeSeconds { get; init; }

    public long UploadMaxBytesPerSecond { get; init; }

    public double? HeartbeatIntervalSeconds { get; init; }

    /// <summary>The server's daily upload window (HH:MM-HH:MM UTC); null: any time.</summary>
    public string? UploadWindow { get; init; }

    /// <summary>Idle threshold as a fraction of link speed from the policy; null: Probe:Upload:IdleBytesPerSecond; 0: no idle wait.</summary>
    public double? UploadIdleUtilisation { get; init; }

    /// <summary>Set after a crash loop made the probe fall back to its last known-good policy, until a new policy is applied.</summary>
    public Policies.PolicyFallback? Fallback { get; init; }
}

/// <summary>Frames by stage: Captured = Written + QueueDropped + DiskDropped once the queue is empty.</summary>
public sealed record CaptureStatus
{
    public long Captured { get; init; }

    public long Written { get; init; }

    /// <summary>pcap_stats ps_recv: frames that passed the filter in the kernel.</summary>
    public long PcapReceived { get; init; }

    /// <summary>pcap_stats ps_drop: the kernel buffer was full.</summary>
    public long KernelDropped { get; init; }

    /// <summary>pcap_stats ps_ifdrop: dropped by the interface or its driver.</summary>
    public long InterfaceDropped { get; init; }

    /// <summary>The queue to the spool writer was full.</summary>
    public long QueueDropped { get; init; }

    /// <summary>The disk guard discarded them (pause-capture, or nothing left to evict).</summary>
    public long DiskDropped { get; init; }

    public double FramesPerSecond { get; init; }

    public double BytesPerSecond { get; init; }

    public int QueueDepth { get; init; }
}

public sealed record SpoolStatus
{
    public string Directory { get; init; } = "";

    public int Files { get; init; }

    public long Bytes { get; init; }

    public DateTimeOffset? Oldest { get; init; }

    public double? OldestAgeSeconds { get; init; }

    public long FreeDiskBytes { get; init; }

    /// <summary>evict-oldest or pause-capture.</summary>
    public string Policy { get; init; } = "";

    /// <summary>ok, paused or full.</summary>
    public string Guard { get; init; } = "ok";

    public long MaxSpoolBytes { get; init; }

    public long MinFreeDiskBytes { get; init; }

    public long EvictedFiles { get; init; }

    public long EvictedBytes { get; init; }

    public long EvictedFrames { get; init; }

    public string? CurrentFile { get; init; }

    public long CurrentFileBytes { get; init; }

    public long CurrentFileFrames { get; init; }

    public long FilesClosed { get; init; }
}

/// <summary>The uploader's counters, as it reports them (<see cref="IUploader.Status"/>).</summary>
/// <param name="Failures">Upload attempts that failed, retried ones included (an upload that succeeded on its fifth try counts 4).</param>
/// <param name="LastError">What the last failed attempt got; null when none failed since the start.</param>
/// <param name="LastErrorAt">When it failed.</param>
/// <param name="FailingSince">The first failure since the last acknowledged file; null while uploads succeed.</param>
/// <param name="DegradedReason">Why uploads make the probe degraded (failing for longer than <c>Probe:Upload:DegradedAfter</c>), or null.</param>
public sealed record UploaderSnapshot(long FilesUploaded, long BytesUploaded, long Failures, DateTimeOffset? LastSuccess, bool Uploading,
    string? LastError = null, DateTimeOffset? LastErrorAt = null, DateTimeOffset? FailingSince = null, string? DegradedReason = null);

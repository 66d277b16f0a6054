using System.ComponentModel.DataAnnotations;
using Google.Protobuf.WellKnownTypes;
using Survey6.Contracts.V1;

namespace Survey6.Server.Options;

/// <summary>The policy a probe receives when it joins; section <c>Server:InitialPolicy</c>.</summary>
public sealed class PolicyOptions
{
    public const string SectionName = "Server:InitialPolicy";

    [Range(1, long.MaxValue)]
    public long Version { get; set; } = 1;

    /// <summary>Empty: the probe's built-in filter (IPv6, 6in4, Teredo).</summary>
    public string CaptureFilter { get; set; } = "";

    /// <summary>0: whole frames.</summary>
    [Range(0, 262144)]
    public int Snaplen { get; set; }

    [Range(1L << 20, 1L << 40)]
    public long RotateSizeBytes { get; set; } = 256L << 20;

    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan RotateAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Daily upload window in UTC; equal start and end mean any time.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "23:59:59")]
    public TimeSpan UploadWindowStart { get; set; }

    [Range(typeof(TimeSpan), "00:00:00", "23:59:59")]
    public TimeSpan UploadWindowEnd { get; set; }

    /// <summary>0: no bound.</summary>
    [Range(0, long.MaxValue)]
    public long UploadMaxBytesPerSecond { get; set; }

    [Range(0.0, 1.0)]
    public double UploadIdleUtilisation { get; set; } = 0.5;

    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Capture interfaces; empty: the probe's own configuration.</summary>
    public string[] Interfaces { get; set; } = [];

    public Policy ToPolicy() => new()
    {
        Interfaces = { Interfaces },
        Version = Version,
        CaptureFilter = CaptureFilter,
        Snaplen = (uint)Snaplen,
        RotateSizeBytes = (ulong)RotateSizeBytes,
        RotateAge = Duration.FromTimeSpan(RotateAge),
        UploadWindowStart = Duration.FromTimeSpan(UploadWindowStart),
        UploadWindowEnd = Duration.FromTimeSpan(UploadWindowEnd),
        UploadMaxBytesPerSecond = (ulong)UploadMaxBytesPerSecond,
        UploadIdleUtilisation = UploadIdleUtilisation,
        HeartbeatInterval = Duration.FromTimeSpan(HeartbeatInterval),
    };
}

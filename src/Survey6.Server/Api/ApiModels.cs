using System.Text.Json;
using System.Text.Json.Serialization;

namespace Survey6.Server.Api;

// The JSON shapes of /api/v1 (snake_case through ApiJsonContext). Fields not known yet are null, not
// missing, so clients can rely on the shape while later parts fill them in.

/// <summary>One page of a list; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextCursor);

public sealed record LocationDto(double? Latitude, double? Longitude, string? Country, string? City);

/// <summary>A probe as listed.</summary>
public record ProbeDto
{
    public required string Id { get; init; }

    /// <summary>pending, healthy, degraded, suspended, offline, inactive or revoked.</summary>
    public required string State { get; init; }

    /// <summary>Why the probe is in its state (degraded, suspended, revoked); null when there is nothing to say.</summary>
    public required IReadOnlyList<string>? StateReasons { get; init; }

    public required DateTimeOffset? LastHeartbeat { get; init; }

    public required string Hostname { get; init; }

    public required IReadOnlyDictionary<string, string> Labels { get; init; }

    public required LocationDto? Location { get; init; }

    /// <summary>The probe's software version: from its last heartbeat once there are heartbeats, from its join until then.</summary>
    public required string? Version { get; init; }

    public required DateTimeOffset CertNotAfter { get; init; }

    public required string CertSerial { get; init; }

    public required DateTimeOffset JoinedAt { get; init; }

    public required string JoinedFrom { get; init; }

    /// <summary>The join token it joined with.</summary>
    public required string TokenId { get; init; }

    /// <summary>When it left or was revoked.</summary>
    public required DateTimeOffset? LeftAt { get; init; }

    public required string? LeaveReason { get; init; }
}

/// <summary>A probe with its host facts and certificates.</summary>
public sealed record ProbeDetailDto : ProbeDto
{
    public required HostFactsDto? Facts { get; init; }

    public required IReadOnlyList<CertificateDto> Certificates { get; init; }
}

public sealed record HostFactsDto(string Hostname, string Os, string Kernel, string SoftwareVersion, IReadOnlyList<InterfaceDto> Interfaces);

public sealed record InterfaceDto(string Name, string Mac, IReadOnlyList<string> Addresses);

public sealed record CertificateDto(string Serial, DateTimeOffset IssuedAt, DateTimeOffset NotAfter, DateTimeOffset? RevokedAt);

/// <summary>One state the probe entered, newest first.</summary>
public sealed record ProbeHistoryEntryDto(DateTimeOffset At, string State, IReadOnlyList<string>? StateReasons, long? EventId);

/// <summary>One minute of a probe's heartbeats (server clock): counter increases summed, levels as their extremes.</summary>
public sealed record ProbeMinuteDto(
    DateTimeOffset Minute,
    int Heartbeats,
    long Received,
    long KernelDropped,
    long InterfaceDropped,
    long QueueDropped,
    long UploadedFiles,
    long UploadedBytes,
    long UploadFailures,
    long SpoolFilesMax,
    long SpoolBytesMax,
    double SpoolOldestSecondsMax,
    long? FreeDiskBytesMin,
    double CpuPercentMean,
    long RssBytesMax,
    string ReportedState);

public sealed record EventDto(long Id, DateTimeOffset At, string Kind, string? ProbeId, string? Remote, string Detail);

/// <summary>A capture the server stored.</summary>
public sealed record UploadDto(
    string Sha256,
    string ProbeId,
    long Size,
    string? Format,
    DateTimeOffset? WindowStart,
    DateTimeOffset? WindowEnd,
    DateTimeOffset ReceivedAt,
    string Status); // stored (durable) or queued (handed to the ingest queue)

public sealed record JoinTokenDto(
    string Id,
    string Status,
    string Description,
    IReadOnlyDictionary<string, string> Labels,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    int MaxUses,
    int Used,
    DateTimeOffset? RevokedAt);

/// <summary>Body of <c>POST /api/v1/tokens</c>; every field is optional.</summary>
public sealed record CreateJoinTokenRequest
{
    /// <summary>Lifetime such as 24h, 30m, 7d; "0" never expires. Default 24h.</summary>
    public string? Ttl { get; init; }

    /// <summary>How many probes may join with it. Default 1.</summary>
    public int? Uses { get; init; }

    /// <summary>Given to every probe that joins with it; they win over the probe's own labels.</summary>
    public Dictionary<string, string>? Labels { get; init; }

    public string? Description { get; init; }
}

/// <summary>A new join token: <see cref="Token"/> is the only time its secret is shown.</summary>
public sealed record CreatedJoinTokenDto(string Token, string JoinCommand, string ServerUrl, string CaHash, JoinTokenDto Info);

/// <summary>Body of <c>POST /api/v1/probes/{id}/revoke</c>; optional.</summary>
public sealed record RevokeProbeRequest
{
    public string? Reason { get; init; }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Page<ProbeDto>))]
[JsonSerializable(typeof(ProbeDetailDto))]
[JsonSerializable(typeof(Page<ProbeHistoryEntryDto>))]
[JsonSerializable(typeof(Page<EventDto>))]
[JsonSerializable(typeof(Page<ProbeMinuteDto>))]
[JsonSerializable(typeof(Page<UploadDto>))]
[JsonSerializable(typeof(Page<JoinTokenDto>))]
[JsonSerializable(typeof(CreateJoinTokenRequest))]
[JsonSerializable(typeof(CreatedJoinTokenDto))]
[JsonSerializable(typeof(RevokeProbeRequest))]
public sealed partial class ApiJsonContext : JsonSerializerContext;

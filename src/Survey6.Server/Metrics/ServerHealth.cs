using Microsoft.Extensions.Diagnostics.HealthChecks;
using Survey6.Server.Uploads;

namespace Survey6.Server.Metrics;

/// <summary>
/// Why the server is degraded, if it is: the one list of reasons that /healthz, gRPC health, <c>survey6_server_degraded</c>
/// and <c>survey6 server probes</c> report (the last reads <see cref="UploadFailures"/> from state.db, being another process).
/// </summary>
/// <param name="UploadFailures"><see cref="Uploads.UploadFailures.Reason"/>.</param>
public sealed record ServerHealthState(DataDiskState Disk, string? UploadFailures)
{
    public IReadOnlyList<string> Reasons { get; } = new[] { Disk.Reason, string.IsNullOrEmpty(UploadFailures) ? null : UploadFailures }.OfType<string>().ToArray();

    public bool Degraded => Reasons.Count > 0;
}

/// <summary>The server's own health, as /healthz, gRPC health and /metrics report it: the data disk and failing uploads.</summary>
public sealed class ServerHealth(DataDiskHealth disk, UploadFailures uploads) : IHealthCheck
{
    public ServerHealthState Read() => new(disk.Read(), uploads.Reason);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var state = Read();
        return Task.FromResult(state.Degraded ? HealthCheckResult.Degraded(string.Join("; ", state.Reasons)) : HealthCheckResult.Healthy());
    }
}

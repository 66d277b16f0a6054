namespace Survey6.Server.Metrics;

/// <summary>The Prometheus endpoint's settings, section <c>Server:Metrics</c>.</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "Server:Metrics";

    /// <summary>Serve /metrics on the operator (HTTP) endpoint.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Require an API token (<c>Authorization: Bearer</c>) for /metrics, as for /api/v1. Off by
    /// default: the operator endpoint listens on loopback unless configured otherwise, and scrapers
    /// rarely carry credentials. Turn it on when the HTTP endpoint is reachable by others.
    /// </summary>
    public bool RequireToken { get; set; }
}

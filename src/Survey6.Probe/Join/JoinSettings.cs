using Survey6.Contracts.V1;

namespace Survey6.Probe.Join;

/// <summary>What <c>survey6 probe join</c> was asked to do.</summary>
public sealed record JoinSettings(
    Uri Server,
    string Token,
    string CaPin,
    string StateDirectory,
    IReadOnlyDictionary<string, string> Labels,
    Location? Location)
{
    public const string DefaultStateDirectory = "/var/lib/survey6/probe";

    /// <summary>Deadline for the whole join, connection included.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A human name for the probe (<c>--name</c>); the server keeps it with the host facts.</summary>
    public string? Name { get; init; }
}

/// <summary>The outcome of a join, as written to the state directory.</summary>
public sealed record JoinResult(string ProbeId, DateTimeOffset CertificateNotAfter, string StateDirectory);

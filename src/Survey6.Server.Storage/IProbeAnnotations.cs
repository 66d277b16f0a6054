using Survey6.Contracts.Manifests;

namespace Survey6.Server.Storage;

/// <summary>
/// What the server knows of a probe, stamped into the manifest of every capture it stores (<see cref="StoredCaptureManifest"/>),
/// however the capture was uploaded. The server's record of the probe (state.db) implements it.
/// </summary>
public interface IProbeAnnotations
{
    /// <summary>The probe's labels and location now; null for a probe the server does not know.</summary>
    ProbeAnnotation? Find(string probeId);
}

/// <summary>A probe's labels and location as the server shows them (<c>survey6 server probes --json</c>).</summary>
public sealed record ProbeAnnotation(IReadOnlyDictionary<string, string> Labels, ProbeLocation? Location);

using Survey6.Contracts.Manifests;
using Survey6.Server.Api;
using Survey6.Server.Storage;

namespace Survey6.Server.Uploads;

/// <summary>
/// A probe's labels and location from state.db, as <c>server probes --json</c> shows them, for the store to stamp into
/// each stored capture's manifest.
/// </summary>
public sealed class StateDbProbeAnnotations(ProbeStore probes) : IProbeAnnotations
{
    public ProbeAnnotation? Find(string probeId)
    {
        if (probes.Get(probeId) is not { } probe)
            return null;
        var location = StateDbProbeQueries.Location(StateDbProbeQueries.ParseFacts(probe.FactsJson));
        return new ProbeAnnotation(
            probe.Labels,
            location is null ? null : new ProbeLocation(location.Latitude, location.Longitude, location.Country, location.City));
    }
}

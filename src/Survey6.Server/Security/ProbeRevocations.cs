using System.Collections.Concurrent;
using Survey6.Server.Storage;

namespace Survey6.Server.Security;

/// <summary>
/// The revocation state the hot paths consult instead of state.db: certificates already found
/// valid (so a call costs a chain check, not a query) and probes revoked while this process runs.
/// Everything that revokes in this process calls <see cref="ProbeRevoked"/> before it returns;
/// revocations written by another process (the CLI) arrive through the control service's event
/// poller, within <c>Server:Control:ExternalChangePollInterval</c>.
/// </summary>
public sealed class ProbeRevocations
{
    private readonly ConcurrentDictionary<string, ProbeCertificateRecord> _valid = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _revokedProbes = new(StringComparer.Ordinal);
    private long _generation;

    /// <summary>Certificates held as valid; for tests and metrics.</summary>
    public int CachedCertificates => _valid.Count;

    /// <summary>True once the probe was revoked (or left) while this process ran.</summary>
    public bool IsProbeRevoked(string probeId) => _revokedProbes.ContainsKey(probeId);

    /// <summary>Forgets the probe's certificates and refuses it from now on; call after the revocation committed.</summary>
    public void ProbeRevoked(string probeId)
    {
        ArgumentNullException.ThrowIfNull(probeId);
        _revokedProbes[probeId] = 0;
        Interlocked.Increment(ref _generation);
        foreach (var (serial, record) in _valid)
        {
            if (string.Equals(record.ProbeId, probeId, StringComparison.Ordinal))
                _valid.TryRemove(serial, out _);
        }
    }

    /// <summary>
    /// The certificate's record: from memory when it was found valid before, otherwise from
    /// <paramref name="load"/>, remembered only if unrevoked and no revocation ran meanwhile.
    /// </summary>
    internal ProbeCertificateRecord? Find(string serial, Func<string, ProbeCertificateRecord?> load)
    {
        if (_valid.TryGetValue(serial, out var cached))
            return cached;
        var generation = Volatile.Read(ref _generation);
        var record = load(serial);
        if (record is null || record.RevokedAt is not null || IsProbeRevoked(record.ProbeId))
            return record;
        _valid[serial] = record;
        // A revocation between the read and the add may have missed this entry: drop it, the next call reads again.
        if (Volatile.Read(ref _generation) != generation)
            _valid.TryRemove(serial, out _);
        return record;
    }
}

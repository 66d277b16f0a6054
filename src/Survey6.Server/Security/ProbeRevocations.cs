using System.Collections.Concurrent;
using Survey6.Server.Storage;

namespace Survey6.Server.Security;

/// <summary>
/// The revocation state the hot paths consult instead of state.db: certificates already found
/// valid (so a call costs a chain check, not a query) and revoked probes, read from state.db at
/// start (<see cref="Load"/>) and added to while this process runs. Everything that revokes in this
/// process calls <see cref="ProbeRevoked"/> before it returns; revocations written by another
/// process (the CLI) arrive through the control service's event poller, within
/// <c>Server:Control:ExternalChangePollInterval</c>. Calls that open a control stream or carry data
/// (<see cref="Find"/> with <c>fresh</c>) always read state.db, so a probe revoked by the CLI cannot
/// start a stream or deliver a capture in that window, and renewals check the probe's state in the
/// transaction that records the new certificate. A read from state.db refuses a certificate whose
/// probe is revoked whatever the certificate's own row says.
/// </summary>
public sealed class ProbeRevocations
{
    private readonly ConcurrentDictionary<string, ProbeCertificateRecord> _valid = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _revokedProbes = new(StringComparer.Ordinal);
    private long _generation;

    /// <summary>The set at start: every probe state.db lists as revoked.</summary>
    public static ProbeRevocations Load(ProbeStore probes)
    {
        ArgumentNullException.ThrowIfNull(probes);
        var revocations = new ProbeRevocations();
        foreach (var id in probes.RevokedProbeIds())
            revocations._revokedProbes[id] = 0;
        return revocations;
    }

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
    /// The certificate's record: from memory when it was found valid before (unless
    /// <paramref name="fresh"/>), otherwise from <paramref name="load"/>, remembered only if unrevoked
    /// and no revocation ran meanwhile.
    /// </summary>
    internal ProbeCertificateRecord? Find(string serial, Func<string, ProbeCertificateRecord?> load, bool fresh = false)
    {
        if (!fresh && _valid.TryGetValue(serial, out var cached))
            return cached;
        var generation = Volatile.Read(ref _generation);
        var record = load(serial);
        if (record is not null && (record.RevokedAt is not null || record.ProbeRevoked) && !IsProbeRevoked(record.ProbeId))
        {
            // Revoked by another process and not yet seen by the poller: refuse the cached calls too.
            ProbeRevoked(record.ProbeId);
            return record;
        }

        if (record is null || record.RevokedAt is not null || record.ProbeRevoked || IsProbeRevoked(record.ProbeId))
            return record;
        _valid[serial] = record;
        // A revocation between the read and the add may have missed this entry: drop it, the next call reads again.
        if (Volatile.Read(ref _generation) != generation)
            _valid.TryRemove(serial, out _);
        return record;
    }
}

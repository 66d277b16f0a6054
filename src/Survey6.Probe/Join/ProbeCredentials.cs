using System.Security.Cryptography.X509Certificates;

namespace Survey6.Probe.Join;

/// <summary>
/// The probe's client certificate as the daemon's connections present it. TLS handshakes ask for
/// <see cref="Current"/> each time (a selection callback), so after a renewal every new connection uses the new
/// certificate without a restart; connections already open keep the one they authenticated with.
/// </summary>
public sealed class ProbeCredentials
{
    private readonly ProbeStateDirectory _state;
    private X509Certificate2? _current;

    public ProbeCredentials(ProbeStateDirectory state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
    }

    public ProbeStateDirectory State => _state;

    /// <summary>The certificate with its key, loaded from the state directory on first use.</summary>
    public X509Certificate2 Current
    {
        get
        {
            var current = Volatile.Read(ref _current);
            if (current is not null)
                return current;
            var loaded = _state.LoadClientCertificate();
            return Interlocked.CompareExchange(ref _current, loaded, null) ?? loaded;
        }
    }

    /// <summary>Reads the pair again after <see cref="ProbeStateDirectory.WriteRenewed"/>.</summary>
    public X509Certificate2 Reload()
    {
        var loaded = _state.LoadClientCertificate();
        // The previous one is not disposed: connections opened with it may still use its key.
        Volatile.Write(ref _current, loaded);
        return loaded;
    }
}

using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Survey6.Probe.Join;

/// <summary>
/// The one HTTP/2 handler a joined probe talks to its C&amp;C through (uploads and the control stream): the server's
/// certificate checked against the pinned CA, the probe's own certificate presented, and one set of timeouts.
/// </summary>
public static class ProbeHttpHandler
{
    /// <summary>How long a TCP and TLS connection may take to open.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Pings find a server that vanished without closing the connection, so no call waits on it forever.</summary>
    public static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(30);

    /// <inheritdoc cref="KeepAlivePingDelay"/>
    public static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(20);

    /// <param name="ca">The pinned CA from the probe's state directory.</param>
    /// <param name="clientCertificate">The certificate to present, asked at each handshake so a renewal takes effect on the next connection.</param>
    public static SocketsHttpHandler Create(X509Certificate2 ca, Func<X509Certificate2?> clientCertificate)
    {
        ArgumentNullException.ThrowIfNull(ca);
        ArgumentNullException.ThrowIfNull(clientCertificate);
        return new SocketsHttpHandler
        {
            ConnectTimeout = ConnectTimeout,
            KeepAlivePingDelay = KeepAlivePingDelay,
            KeepAlivePingTimeout = KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            EnableMultipleHttp2Connections = true,
            SslOptions = new SslClientAuthenticationOptions
            {
                LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate()!,
                RemoteCertificateValidationCallback = PinnedCa.Callback(ca, static _ => { }),
            },
        };
    }
}

using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Survey6.Contracts;
using Survey6.Contracts.V1;

namespace Survey6.Probe.Join;

/// <summary>
/// <c>survey6 probe join</c>: establishes trust in the server from the CA pin, then exchanges the
/// join token and a CSR for the probe's certificate.
/// <list type="number">
/// <item>Connect and take the server's TLS certificate from the handshake, without trusting it yet.</item>
/// <item>Fetch the CA certificate (<c>/v1/ca.pem</c>; TLS stacks never send a self-signed root in the
/// handshake) and accept it only if its key matches the pin and it signed the certificate from step 1.</item>
/// <item>Reconnect trusting that CA alone and call Join; the token is sent only on this connection.</item>
/// </list>
/// The private key is generated here and never leaves the host.
/// </summary>
public static class ProbeJoinClient
{
    public static async Task<JoinResult> JoinAsync(JoinSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Server.Scheme != Uri.UriSchemeHttps)
            throw new ProbeJoinException($"--server must be an https:// URL, not {settings.Server}");
        if (!CaPin.TryParse(settings.CaPin, out var pin))
            throw new ProbeJoinException($"--ca-hash must be sha256: followed by 64 hex digits, not '{settings.CaPin}'");
        var state = new ProbeStateDirectory(settings.StateDirectory);
        if (state.IsJoined)
            throw new ProbeJoinException($"{state.Root} already holds probe {state.ReadProbeId()}; remove it to join again");

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.Timeout);
        var ca = await DiscoverPinnedCaAsync(settings.Server, pin, timeout.Token).ConfigureAwait(false);

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=survey6 probe", key, HashAlgorithmName.SHA256).CreateSigningRequest();
        var request = new JoinRequest
        {
            Token = settings.Token,
            CsrDer = ByteString.CopyFrom(csr),
            Facts = HostFactsCollector.Collect(settings.Labels, settings.Location, settings.Name),
        };

        string? tlsRefusal = null;
        JoinResponse response;
        using (var handler = CreateHandler(PinnedCa.Callback(ca, reason => tlsRefusal = reason)))
        using (var channel = GrpcChannel.ForAddress(settings.Server, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = false }))
        {
            var client = new Contracts.V1.Enrollment.EnrollmentClient(channel);
            try
            {
                response = await client.JoinAsync(request, cancellationToken: timeout.Token).ConfigureAwait(false);
            }
            catch (RpcException e) when (tlsRefusal is not null)
            {
                throw new ProbeJoinException($"refusing the server at {settings.Server}: {tlsRefusal}", e);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.PermissionDenied or StatusCode.InvalidArgument or StatusCode.ResourceExhausted)
            {
                throw new ProbeJoinException(e.Status.Detail, e); // the server's detail names the reason: "join refused: token expired"
            }
            catch (RpcException e)
            {
                throw new ProbeJoinException($"join failed: {e.Status.StatusCode}: {e.Status.Detail}", e);
            }
        }

        using var issued = X509CertificateLoader.LoadCertificate(response.CertificateDer.Span);
        CheckIssued(issued, key, response.ProbeId, ca);
        using var withKey = issued.CopyWithPrivateKey(key);
        state.Write(key, withKey, ca, settings.Server, pin, response);
        return new JoinResult(response.ProbeId, new DateTimeOffset(issued.NotAfter.ToUniversalTime(), TimeSpan.Zero), state.Root);
    }

    /// <summary>Steps 1 and 2: the server's certificate from the handshake, the CA from /v1/ca.pem, checked against the pin.</summary>
    internal static async Task<X509Certificate2> DiscoverPinnedCaAsync(Uri server, string pin, CancellationToken cancellationToken)
    {
        X509Certificate2? serverCertificate = null;
        var presented = new List<X509Certificate2>();
        // Accept any certificate here: nothing secret is sent on this connection, and what it
        // returns is checked against the pin before it is believed.
        using var handler = CreateHandler((_, certificate, chain, _) =>
        {
            if (certificate is not null && serverCertificate is null)
            {
                serverCertificate = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                if (chain is not null)
                {
                    presented.AddRange(chain.ChainPolicy.ExtraStore.Select(c => X509CertificateLoader.LoadCertificate(c.RawData)));
                    presented.AddRange(chain.ChainElements.Skip(1).Select(e => X509CertificateLoader.LoadCertificate(e.Certificate.RawData)));
                }
            }

            return true;
        });
        using var http = new HttpClient(handler, disposeHandler: false);
        string pem;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server, "/v1/ca.pem"))
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new ProbeJoinException($"{server} answered {(int)response.StatusCode} for its CA certificate; is it a survey6 server?");
            pem = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            // The commonest cause: the web UI's address (plain HTTP) given instead of the gRPC one.
            throw new ProbeJoinException(
                $"{server} does not answer with TLS; give the server's gRPC address (server run --grpc-listen, as `server token create` prints it), not its web address", e);
        }
        catch (HttpRequestException e)
        {
            throw new ProbeJoinException($"cannot reach {server}: {e.Message}", e);
        }

        if (serverCertificate is null)
            throw new ProbeJoinException($"{server} presented no TLS certificate");
        var fetched = new X509Certificate2Collection();
        try
        {
            fetched.ImportFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw new ProbeJoinException($"{server} sent an unreadable CA certificate: {e.Message}", e);
        }

        var ca = PinnedCa.Find(serverCertificate, presented.Concat(fetched), pin);
        return X509CertificateLoader.LoadCertificate(ca.RawData);
    }

    private static SocketsHttpHandler CreateHandler(RemoteCertificateValidationCallback validate) => new()
    {
        ConnectTimeout = ProbeHttpHandler.ConnectTimeout,
        SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = validate },
    };

    // The server chooses the subject and validity; check it issued what was asked for, to this key.
    private static void CheckIssued(X509Certificate2 issued, ECDsa key, string probeId, X509Certificate2 ca)
    {
        using var issuedKey = issued.GetECDsaPublicKey();
        var ours = key.ExportSubjectPublicKeyInfo();
        if (issuedKey is null || !issuedKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(ours))
            throw new ProbeJoinException("the server returned a certificate for another key");
        if (!string.Equals(issued.GetNameInfo(X509NameType.SimpleName, false), probeId, StringComparison.Ordinal))
            throw new ProbeJoinException("the server returned a certificate that does not name the probe id it assigned");
        if (!PinnedCa.Chains(issued, ca, out var problem))
            throw new ProbeJoinException("the returned certificate is not from the pinned CA: " + problem);
    }
}

using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Grpc.Net.Client;
using Survey6.Probe.Join;

namespace Survey6.Probe.Upload;

/// <summary>
/// An authenticated gRPC channel to the C&amp;C from a joined probe's state directory: the probe's certificate and
/// key as the TLS client certificate (the server takes the probe id from it), the pinned CA as the only trust
/// anchor for the server, and the server URL from probe.json.
/// </summary>
public sealed class ProbeConnection : IDisposable
{
    private readonly X509Certificate2? _certificate;
    private readonly X509Certificate2 _ca;

    private ProbeConnection(string probeId, Uri server, X509Certificate2? certificate, X509Certificate2 ca, GrpcChannel channel)
    {
        ProbeId = probeId;
        Server = server;
        _certificate = certificate;
        _ca = ca;
        Channel = channel;
    }

    public string ProbeId { get; }

    public Uri Server { get; }

    public GrpcChannel Channel { get; }

    /// <summary>Opens a channel (connecting lazily) for the probe in <paramref name="state"/>.</summary>
    /// <param name="state">A joined probe's state directory.</param>
    /// <param name="server">Overrides the server URL recorded at join time.</param>
    /// <exception cref="InvalidOperationException">The directory holds no joined probe.</exception>
    /// <param name="credentials">Where new TLS connections take the client certificate from (renewals); default: the files as they are now.</param>
    public static ProbeConnection Open(ProbeStateDirectory state, Uri? server = null, ProbeCredentials? credentials = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!state.IsJoined)
            throw new InvalidOperationException($"{state.Root} holds no joined probe (run `survey6 probe join` first, or pass --state-dir)");
        var probe = JsonNode.Parse(File.ReadAllText(state.ProbeJsonPath));
        var probeId = probe?["probe_id"]?.GetValue<string>() ?? throw new InvalidOperationException($"{state.ProbeJsonPath} names no probe_id");
        server ??= probe?["server"]?.GetValue<string>() is { } url ? new Uri(url) : throw new InvalidOperationException($"{state.ProbeJsonPath} names no server");

        var certificate = credentials?.Current ?? state.LoadClientCertificate();
        var ca = X509CertificateLoader.LoadCertificateFromFile(state.CaPath);
        var handler = ProbeHttpHandler.Create(ca, () => credentials?.Current ?? certificate);
        var channel = GrpcChannel.ForAddress(server, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        // A shared certificate belongs to the credentials, not to this connection.
        return new ProbeConnection(probeId, server, credentials is null ? certificate : null, ca, channel);
    }

    public void Dispose()
    {
        Channel.Dispose();
        _certificate?.Dispose();
        _ca.Dispose();
    }
}

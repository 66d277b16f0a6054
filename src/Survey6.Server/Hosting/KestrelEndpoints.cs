using System.Net;
using System.Security.Authentication;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;
using Survey6.Server.Options;
using Survey6.Server.Pki;

namespace Survey6.Server.Hosting;

/// <summary>
/// The two Kestrel endpoints: gRPC for probes (TLS, HTTP/2 only, client certificate optional at
/// the TLS layer so Join works without one) and plain HTTP/1.1 for operators.
/// </summary>
internal sealed class KestrelEndpoints(IOptions<ServerOptions> options, ServerPki pki) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        kestrel.AddServerHeader = false;
        var grpc = ListenAddress.Parse(options.Value.GrpcListen, "Server:GrpcListen");
        Listen(kestrel, grpc, endpoint =>
        {
            endpoint.Protocols = HttpProtocols.Http2;
            endpoint.UseHttps(new HttpsConnectionAdapterOptions
            {
                ServerCertificate = pki.ServerCertificate,
                SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                // Accept any certificate in the handshake: ProbeAuthenticationInterceptor judges it per call,
                // so a refusal becomes a gRPC status with a reason and an event rather than a dropped connection.
                ClientCertificateValidation = static (_, _, _) => true,
            });
        });

        if (!string.IsNullOrWhiteSpace(options.Value.HttpListen))
        {
            var http = ListenAddress.Parse(options.Value.HttpListen, "Server:HttpListen");
            Listen(kestrel, http, endpoint => endpoint.Protocols = HttpProtocols.Http1);
        }
    }

    private static void Listen(KestrelServerOptions kestrel, ListenAddress address, Action<ListenOptions> configure)
    {
        if (address.IsAny)
            kestrel.ListenAnyIP(address.Port, configure);
        else
            kestrel.Listen(new IPEndPoint(address.Address!, address.Port), configure);
    }
}

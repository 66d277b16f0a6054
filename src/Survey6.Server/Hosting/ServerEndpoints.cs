using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Survey6.Server.Options;

namespace Survey6.Server.Hosting;

/// <summary>Where a started server listens, with the ports it actually bound (useful when configured as 0).</summary>
public sealed record ServerEndpoints(Uri GrpcUrl, Uri? HttpUrl, Uri AdvertisedUrl)
{
    /// <summary>Reads the bound addresses of a started server.</summary>
    public static ServerEndpoints From(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var addresses = services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses
            ?? throw new InvalidOperationException("the server has not started");
        var grpc = addresses.Select(a => new Uri(a)).FirstOrDefault(u => u.Scheme == Uri.UriSchemeHttps)
            ?? throw new InvalidOperationException("no gRPC endpoint is bound");
        var http = addresses.Select(a => new Uri(a)).FirstOrDefault(u => u.Scheme == Uri.UriSchemeHttp);
        var options = services.GetRequiredService<IOptions<ServerOptions>>().Value;
        return new ServerEndpoints(grpc, http, Advertise(options, grpc.Port));
    }

    /// <summary>
    /// The URL probes are told to join: the configured advertised host, else the gRPC listen
    /// address if it is a specific one, else the machine's host name.
    /// </summary>
    public static Uri Advertise(ServerOptions options, int port)
    {
        ArgumentNullException.ThrowIfNull(options);
        string host;
        if (!string.IsNullOrWhiteSpace(options.AdvertisedHost))
            host = options.AdvertisedHost.Trim();
        else if (ListenAddress.TryParse(options.GrpcListen, out var listen) && listen.Address is { } address
                 && !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any))
            host = address.ToString();
        else
            host = Dns.GetHostName();
        if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            host = "[" + ip + "]";
        return new Uri($"https://{host}:{port}");
    }
}

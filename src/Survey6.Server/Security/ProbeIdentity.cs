using System.Net;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Survey6.Server.Security;

/// <summary>
/// Who is calling: set by <see cref="ProbeAuthenticationInterceptor"/> from a client certificate
/// that chains to the server's CA and is not revoked. The probe id comes from the certificate's
/// subject only, never from a request field.
/// </summary>
public sealed record ProbeIdentity(string ProbeId, string CertificateSerial, DateTimeOffset CertificateNotAfter);

public static class ProbeCallContextExtensions
{
    /// <summary>The authenticated probe of this call; throws inside RPCs marked [AllowAnonymous] (Join), which have none.</summary>
    public static ProbeIdentity GetProbeIdentity(this ServerCallContext context) =>
        context.GetHttpContext().Features.Get<ProbeIdentity>()
        ?? throw new InvalidOperationException("no authenticated probe for this call; is the RPC marked [AllowAnonymous]?");

    /// <summary>The caller's address as text (IPv4-mapped addresses shown as IPv4), for events and logs.</summary>
    public static string RemoteAddress(this ServerCallContext context) => RemoteAddress(context.GetHttpContext());

    internal static string RemoteAddress(HttpContext http) => RemoteIp(http)?.ToString() ?? "unknown";

    internal static IPAddress? RemoteIp(HttpContext http) =>
        http.Connection.RemoteIpAddress is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : http.Connection.RemoteIpAddress;
}

using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Survey6.Server.Diagnostics;
using Survey6.Server.Storage;

namespace Survey6.Server.Security;

/// <summary>
/// Runs before every gRPC method of every service: unless the method is marked
/// <see cref="AllowAnonymousAttribute"/>, the call needs a valid probe certificate
/// (<see cref="ProbeCertificateValidator"/>), and the resulting <see cref="ProbeIdentity"/> is put
/// on the call for <see cref="ProbeCallContextExtensions.GetProbeIdentity"/>. Refusals are
/// counted and recorded as events (at most one per source and reason a minute). New services are covered simply by being mapped.
/// </summary>
public sealed class ProbeAuthenticationInterceptor(
    ProbeCertificateValidator validator,
    EventStore events,
    ServerCounters counters,
    RefusalEventThrottle throttle,
    ILogger<ProbeAuthenticationInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await AuthenticateAsync(context).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        // Client streams carry captures: checked against state.db, not the in-memory revocation state.
        await AuthenticateAsync(context, fresh: true).ConfigureAwait(false);
        return await continuation(requestStream, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AuthenticateAsync(context).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        // A control stream lives long: opened only with a certificate checked against state.db.
        await AuthenticateAsync(context, fresh: true).ConfigureAwait(false);
        await continuation(requestStream, responseStream, context).ConfigureAwait(false);
    }

    private async Task AuthenticateAsync(ServerCallContext context, bool fresh = false)
    {
        var http = context.GetHttpContext();
        if (http.GetEndpoint()?.Metadata.GetMetadata<IAllowAnonymous>() is not null)
            return;

        var certificate = http.Connection.ClientCertificate
            ?? await http.Connection.GetClientCertificateAsync(context.CancellationToken).ConfigureAwait(false);
        var result = validator.Validate(certificate, fresh);
        if (result.Identity is { } identity)
        {
            http.Features.Set(identity);
            return;
        }

        var remote = ProbeCallContextExtensions.RemoteAddress(http);
        counters.Increment(ServerCounters.AuthenticationRefusedPrefix + result.Reason.Replace(' ', '_'));
        if (throttle.ShouldRecord(remote, result.Reason))
        {
            ServerLog.AuthenticationRefused(logger, context.Method, remote, result.Reason);
            // The subject is recorded as claimed, for the operator; it identifies nothing.
            var claimed = certificate?.Subject ?? "";
            events.Append(EventKinds.AuthenticationRefused, null, remote, $"{context.Method}: {result.Reason}; subject {claimed}");
        }

        throw new RpcException(new Status(result.Code, "client certificate refused: " + result.Reason));
    }
}

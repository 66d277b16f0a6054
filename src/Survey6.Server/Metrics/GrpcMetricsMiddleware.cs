using System.Diagnostics;
using System.Globalization;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Survey6.Server.Metrics;

/// <summary>
/// Counts gRPC calls by their gRPC status, which HTTP metrics cannot see (a failed call is still
/// HTTP 200; the status travels in the trailers, or in the headers of a trailers-only answer).
/// As middleware rather than an interceptor it also sees calls refused by the authentication
/// interceptor.
/// </summary>
internal sealed class GrpcMetricsMiddleware(RequestDelegate next, ServerMetrics metrics)
{
    private const string StatusHeader = "grpc-status";

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is not { } grpc)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var (service, method) = (grpc.Method.ServiceName, grpc.Method.Name);
        var inProgress = metrics.GrpcCallsInProgress.WithLabels(service, method);
        inProgress.Inc();
        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            inProgress.Dec();
            metrics.GrpcCallDuration.WithLabels(service, method).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
            metrics.GrpcCalls.WithLabels(service, method, Status(context)).Inc();
        }
    }

    private static string Status(HttpContext context)
    {
        string? text = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers[StatusHeader];
        if (string.IsNullOrEmpty(text))
            text = context.Response.Headers[StatusHeader];
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && Enum.IsDefined((StatusCode)code)
            ? ((StatusCode)code).ToString()
            : nameof(StatusCode.Unknown);
    }
}

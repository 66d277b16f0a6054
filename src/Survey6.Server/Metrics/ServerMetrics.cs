using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;
using Survey6.Ingest;
using Survey6.Server.Api;
using Survey6.Server.Diagnostics;
using Survey6.Server.Uploads;

namespace Survey6.Server.Metrics;

/// <summary>
/// The server's Prometheus registry (one per host, not prometheus-net's static default, so several
/// servers in one process keep apart). Gauges that describe state (probes per state, ingest queue)
/// are read at scrape time; <see cref="ServerCounters"/> are bridged at scrape time too, by name:
/// <list type="table">
/// <item><term>join.accepted</term><description>survey6_joins_accepted_total</description></item>
/// <item><term>join.refused.R</term><description>survey6_join_refusals_total{reason=R}</description></item>
/// <item><term>auth.refused.R</term><description>survey6_call_refusals_total{reason=R} (probe calls refused by the certificate check)</description></item>
/// <item><term>api.refused.R</term><description>survey6_api_refusals_total{reason=R}</description></item>
/// <item><term>heartbeat.received</term><description>survey6_heartbeats_received_total</description></item>
/// <item><term>upload.stored</term><description>survey6_uploads_total, and survey6_upload_outcomes_total{outcome=stored}</description></item>
/// <item><term>upload.duplicate, upload.interrupted, upload.failed</term><description>survey6_upload_outcomes_total{outcome}</description></item>
/// <item><term>upload.bytes_received</term><description>survey6_upload_bytes_total</description></item>
/// <item><term>upload.rejected.R</term><description>survey6_upload_rejections_total{reason=R}</description></item>
/// <item><term>anything else</term><description>survey6_server_counter_total{name}</description></item>
/// </list>
/// The upload names are <see cref="UploadCounterNames"/>'s, their one owner (the upload service counts with them).
/// </summary>
public sealed class ServerMetrics
{
    public const string HeartbeatReceived = "heartbeat.received";

    private static readonly TimeSpan IngestStatsTimeout = TimeSpan.FromSeconds(5);

    private static readonly string[] JoinRefusalReasons = ["malformed", "unknown", "revoked", "expired", "used-up", "rate-limited", "bad-csr", "bad-facts"];

    private readonly ServerCounters _counters;
    private readonly IProbeQueries _probes;
    private readonly IServiceProvider _services;
    private readonly ILogger<ServerMetrics> _logger;
    private readonly Gauge _probesByState;
    private readonly Counter _joinsAccepted;
    private readonly Counter _joinRefusals;
    private readonly Counter _callRefusals;
    private readonly Counter _apiRefusals;
    private readonly Counter _heartbeats;
    private readonly Counter _uploads;
    private readonly Counter _uploadBytes;
    private readonly Counter _uploadRejections;
    private readonly Counter _uploadOutcomes;
    private readonly Gauge _dataFreeBytes;
    private readonly Gauge _dataFloorBytes;
    private readonly Gauge _degraded;
    private readonly Gauge _uploadFailuresInARow;
    private readonly Counter _otherCounters;
    private readonly Lazy<IngestGauges?> _ingest;

    public ServerMetrics(ServerCounters counters, IProbeQueries probes, IServiceProvider services, ILogger<ServerMetrics> logger)
    {
        _counters = counters;
        _probes = probes;
        _services = services;
        _logger = logger;
        Registry = Prometheus.Metrics.NewCustomRegistry();
        Factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        DotNetStats.Register(Registry);

        _probesByState = Factory.CreateGauge("survey6_probes", "Probes by state.", ["state"]);
        _joinsAccepted = Factory.CreateCounter("survey6_joins_accepted_total", "Joins accepted: probes enrolled.");
        _joinRefusals = Factory.CreateCounter("survey6_join_refusals_total", "Joins refused, by reason.", ["reason"]);
        _callRefusals = Factory.CreateCounter("survey6_call_refusals_total", "Probe gRPC calls refused by the client-certificate check, by reason.", ["reason"]);
        _apiRefusals = Factory.CreateCounter("survey6_api_refusals_total", "Operator API calls refused for want of a valid API token, by reason.", ["reason"]);
        _heartbeats = Factory.CreateCounter("survey6_heartbeats_received_total", "Heartbeats received from probes.");
        _uploads = Factory.CreateCounter("survey6_uploads_total", "Captures stored and acknowledged.");
        _uploadBytes = Factory.CreateCounter("survey6_upload_bytes_total", "Bytes of captures received.");
        _uploadRejections = Factory.CreateCounter("survey6_upload_rejections_total", "Uploads rejected, by reason.", ["reason"]);
        _uploadOutcomes = Factory.CreateCounter("survey6_upload_outcomes_total", "Upload calls by outcome: stored, duplicate, interrupted, failed.", ["outcome"]);
        foreach (var outcome in UploadOutcomes.Values)
            _uploadOutcomes.WithLabels(outcome);
        _dataFreeBytes = Factory.CreateGauge("survey6_data_directory_free_bytes", "Bytes free on the file system of the data directory.");
        _dataFloorBytes = Factory.CreateGauge("survey6_data_directory_floor_bytes", "Free bytes the server keeps (" + DataDiskState.FloorSetting + "); below it uploads are refused and the server is degraded.");
        _degraded = Factory.CreateGauge("survey6_server_degraded", "1 while the server is degraded (see /healthz for the reason), else 0.");
        _uploadFailuresInARow = Factory.CreateGauge("survey6_upload_failures_in_a_row", "Uploads that failed on the server's side since the last one stored; at " + UploadFailureOptions.SectionName + ":DegradedAfter the server is degraded.");
        _otherCounters = Factory.CreateCounter("survey6_server_counter_total", "Other server counters, by their internal name.", ["name"]);
        GrpcCalls = Factory.CreateCounter("survey6_grpc_calls_total", "gRPC calls finished, by service, method and status code.", ["service", "method", "code"]);
        GrpcCallDuration = Factory.CreateHistogram("survey6_grpc_call_duration_seconds", "Duration of gRPC calls (a stream's whole life).",
            new HistogramConfiguration { LabelNames = ["service", "method"], Buckets = Histogram.ExponentialBuckets(0.001, 4, 10) });
        GrpcCallsInProgress = Factory.CreateGauge("survey6_grpc_calls_in_progress", "gRPC calls running now (open streams included).", ["service", "method"]);

        // Zero series for the usual reasons, so rates and alerts work before the first refusal.
        foreach (var reason in JoinRefusalReasons)
            _joinRefusals.WithLabels(reason);
        foreach (var refusal in new[] { ApiTokenRefusal.Missing, ApiTokenRefusal.Malformed, ApiTokenRefusal.Unknown, ApiTokenRefusal.Revoked, ApiTokenRefusal.Expired })
            _apiRefusals.WithLabels(refusal.Name());

        _ingest = new Lazy<IngestGauges?>(() => services.GetService<IIngestQueue>() is { } queue ? new IngestGauges(Factory, queue) : null);
        Registry.AddBeforeCollectCallback(CollectAsync);
    }

    /// <summary>Upload counters that are an outcome of a call, and the label each gets.</summary>
    private static readonly Dictionary<string, string> UploadOutcomes = new(StringComparer.Ordinal)
    {
        [UploadCounterNames.Stored] = "stored",
        [UploadCounterNames.Duplicate] = "duplicate",
        [UploadCounterNames.Interrupted] = "interrupted",
        [UploadCounterNames.Failed] = "failed",
    };

    public CollectorRegistry Registry { get; }

    public IMetricFactory Factory { get; }

    internal Counter GrpcCalls { get; }

    internal Histogram GrpcCallDuration { get; }

    internal Gauge GrpcCallsInProgress { get; }

    private async Task CollectAsync(CancellationToken cancellationToken)
    {
        BridgeCounters();
        try
        {
            if (_services.GetService<ServerHealth>()?.Read() is { } health)
            {
                _dataFreeBytes.Set(health.Disk.FreeBytes);
                _dataFloorBytes.Set(health.Disk.FloorBytes);
                _degraded.Set(health.Degraded ? 1 : 0);
            }

            if (_services.GetService<UploadFailures>() is { } failures)
                _uploadFailuresInARow.Set(failures.InARow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            MetricsLog.CollectFailed(_logger, "data directory free space", e);
        }

        try
        {
            foreach (var (state, count) in await _probes.CountByStateAsync(cancellationToken).ConfigureAwait(false))
                _probesByState.WithLabels(state).Set(count);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            MetricsLog.CollectFailed(_logger, "probe states", e);
        }

        if (_ingest.Value is { } ingest)
            await ingest.CollectAsync(_logger, cancellationToken).ConfigureAwait(false);
    }

    private void BridgeCounters()
    {
        foreach (var (name, value) in _counters.Snapshot())
        {
            if (UploadOutcomes.TryGetValue(name, out var outcome))
                _uploadOutcomes.WithLabels(outcome).IncTo(value);
            var counter = name switch
            {
                ServerCounters.JoinAccepted => _joinsAccepted,
                HeartbeatReceived => _heartbeats,
                UploadCounterNames.Stored => _uploads,
                UploadCounterNames.BytesReceived => _uploadBytes,
                _ when name.StartsWith(ServerCounters.JoinRefusedPrefix, StringComparison.Ordinal) =>
                    _joinRefusals.WithLabels(name[ServerCounters.JoinRefusedPrefix.Length..]),
                _ when name.StartsWith(ServerCounters.AuthenticationRefusedPrefix, StringComparison.Ordinal) =>
                    _callRefusals.WithLabels(name[ServerCounters.AuthenticationRefusedPrefix.Length..]),
                _ when name.StartsWith(ApiAuthorizationResultHandler.RefusedCounterPrefix, StringComparison.Ordinal) =>
                    _apiRefusals.WithLabels(name[ApiAuthorizationResultHandler.RefusedCounterPrefix.Length..]),
                _ when name.StartsWith(UploadCounterNames.RejectedPrefix, StringComparison.Ordinal) =>
                    _uploadRejections.WithLabels(name[UploadCounterNames.RejectedPrefix.Length..]),
                _ when UploadOutcomes.ContainsKey(name) => null, // only an outcome (stored is also survey6_uploads_total, above)
                _ => (ICounter)_otherCounters.WithLabels(name),
            };
            counter?.IncTo(value);
        }
    }

    /// <summary>Created only when an ingest queue is registered, so a server without one exports no misleading zeros.</summary>
    private sealed class IngestGauges(IMetricFactory factory, IIngestQueue queue)
    {
        private readonly Gauge _items = factory.CreateGauge("survey6_ingest_queue_items", "Ingest queue items by status (pending, in_flight, dead_lettered).", ["status"]);
        private readonly Gauge _oldest = factory.CreateGauge("survey6_ingest_queue_oldest_pending_seconds", "Age of the oldest pending ingest item; 0 when none is pending.");
        private readonly Gauge _up = factory.CreateGauge("survey6_ingest_queue_up", "1 if the ingest queue answered the last scrape, else 0.");

        public async Task CollectAsync(ILogger logger, CancellationToken cancellationToken)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(IngestStatsTimeout);
            try
            {
                var stats = await queue.GetStatsAsync(timeout.Token).ConfigureAwait(false);
                _items.WithLabels("pending").Set(stats.Pending);
                _items.WithLabels("in_flight").Set(stats.InFlight);
                _items.WithLabels("dead_lettered").Set(stats.DeadLettered);
                _oldest.Set(stats.OldestPendingAge?.TotalSeconds ?? 0);
                _up.Set(1);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // A queue that is down must not fail the whole scrape: the other series still matter.
                _up.Set(0);
                MetricsLog.CollectFailed(logger, "ingest queue", e);
            }
        }
    }
}

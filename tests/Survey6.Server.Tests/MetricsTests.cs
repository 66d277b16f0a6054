using System.Globalization;
using System.Net;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.Configuration;
using Survey6.Contracts.V1;
using Survey6.Ingest;
using Survey6.Server.Diagnostics;
using Survey6.Server.Metrics;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_show_joins_refusals_probes_and_calls()
    {
        await using var server = await ServerHarness.StartAsync();
        using var http = server.Http();
        var (_, certificate) = await server.JoinAsync(server.CreateToken());
        certificate.Dispose();
        await Assert.ThrowsAsync<RpcException>(() => server.JoinAsync("zzzzzz.0123456789abcdef"));
        var noCertificate = await Assert.ThrowsAsync<RpcException>(async () => await server.Enrollment().LeaveAsync(new LeaveRequest()));
        Assert.Equal(StatusCode.Unauthenticated, noCertificate.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/probes")).StatusCode);

        // What other parts report through ServerCounters.
        var counters = server.Get<ServerCounters>();
        counters.Increment(ServerMetrics.HeartbeatReceived);
        counters.Increment(ServerMetrics.HeartbeatReceived);
        counters.Increment(Survey6.Server.Uploads.UploadCounterNames.Stored);
        counters.Add(Survey6.Server.Uploads.UploadCounterNames.BytesReceived, 123_456);
        counters.Increment("something.new");

        var response = await http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(1, Sample(text, "survey6_probes{state=\"pending\"}"));
        Assert.Equal(0, Sample(text, "survey6_probes{state=\"healthy\"}"));
        Assert.Equal(0, Sample(text, "survey6_probes{state=\"revoked\"}"));
        Assert.Equal(1, Sample(text, "survey6_joins_accepted_total"));
        Assert.Equal(1, Sample(text, "survey6_join_refusals_total{reason=\"unknown\"}"));
        Assert.Equal(0, Sample(text, "survey6_join_refusals_total{reason=\"expired\"}"));
        Assert.Equal(1, Sample(text, "survey6_call_refusals_total{reason=\"no_client_certificate\"}"));
        Assert.Equal(1, Sample(text, "survey6_api_refusals_total{reason=\"missing\"}"));
        Assert.Equal(2, Sample(text, "survey6_heartbeats_received_total"));
        Assert.Equal(1, Sample(text, "survey6_uploads_total"));
        Assert.Equal(123_456, Sample(text, "survey6_upload_bytes_total"));
        Assert.Equal(1, Sample(text, "survey6_upload_outcomes_total{outcome=\"stored\"}"));
        Assert.Equal(0, Sample(text, "survey6_upload_outcomes_total{outcome=\"failed\"}"));
        Assert.True(Sample(text, "survey6_data_directory_free_bytes") > 0);
        Assert.Equal(0, Sample(text, "survey6_server_degraded"));
        Assert.Equal(1, Sample(text, "survey6_server_counter_total{name=\"something.new\"}"));

        Assert.Equal(1, Sample(text, "survey6_grpc_calls_total{service=\"survey6.v1.Enrollment\",method=\"Join\",code=\"OK\"}"));
        Assert.Equal(1, Sample(text, "survey6_grpc_calls_total{service=\"survey6.v1.Enrollment\",method=\"Join\",code=\"PermissionDenied\"}"));
        Assert.Equal(1, Sample(text, "survey6_grpc_calls_total{service=\"survey6.v1.Enrollment\",method=\"Leave\",code=\"Unauthenticated\"}"));
        Assert.Equal(3, Sample(text, "survey6_grpc_call_duration_seconds_count{service=\"survey6.v1.Enrollment\",method=\"Join\"}") +
            Sample(text, "survey6_grpc_call_duration_seconds_count{service=\"survey6.v1.Enrollment\",method=\"Leave\"}"));
        Assert.Equal(0, Sample(text, "survey6_grpc_calls_in_progress{service=\"survey6.v1.Enrollment\",method=\"Join\"}"));
        Assert.Contains("http_requests_received_total{code=\"401\",method=\"GET\"", text, StringComparison.Ordinal);
        Assert.Contains("process_cpu_seconds_total", text, StringComparison.Ordinal);
        // The server always runs with its ingest queue (SQLite by default): nothing was uploaded, so it is empty.
        Assert.Equal(1, Sample(text, "survey6_ingest_queue_up"));
        Assert.Equal(0, Sample(text, "survey6_ingest_queue_items{status=\"pending\"}"));

        // A second scrape does not count anything twice.
        var again = await http.GetStringAsync("/metrics");
        Assert.Equal(1, Sample(again, "survey6_joins_accepted_total"));
    }

    [Fact]
    public async Task The_ingest_queue_depth_is_exported_when_a_queue_is_registered()
    {
        var root = TempDirectory.Create();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ingest:Kind"] = "Sqlite",
            ["Ingest:Sqlite:Path"] = Path.Combine(root, "ingest.db"),
        }).Build();
        await using var server = await ServerHarness.StartAsync(root, services: services => services.AddSurvey6IngestQueue(configuration));
        var queue = server.Get<IIngestQueue>();
        await queue.EnqueueAsync(new CaptureEnqueued(new string('a', 64), "p-aaaaaaaaaaaa", "/x.pcapng", 10, DateTimeOffset.UtcNow, null), CancellationToken.None);
        await queue.EnqueueAsync(new CaptureEnqueued(new string('b', 64), "p-aaaaaaaaaaaa", "/y.pcapng", 10, DateTimeOffset.UtcNow, null), CancellationToken.None);
        Assert.NotNull(await queue.TryDequeueAsync("worker", CancellationToken.None));

        using var http = server.Http();
        var text = await http.GetStringAsync("/metrics");
        Assert.Equal(1, Sample(text, "survey6_ingest_queue_items{status=\"pending\"}"));
        Assert.Equal(1, Sample(text, "survey6_ingest_queue_items{status=\"in_flight\"}"));
        Assert.Equal(0, Sample(text, "survey6_ingest_queue_items{status=\"dead_lettered\"}"));
        Assert.Equal(1, Sample(text, "survey6_ingest_queue_up"));
    }

    [Fact]
    public async Task Metrics_are_open_by_default_and_name_no_probe_host_or_token()
    {
        await using var server = await ServerHarness.StartAsync();
        var token = server.CreateToken();
        var (joined, certificate) = await server.JoinAsync(token, new HostFacts { Hostname = "secret-host-name" });
        await using (var stream = ProbeStream.Open(server, certificate))
            await stream.HeartbeatAsync(ProbeStream.Healthy(server));
        var apiToken = server.CreateApiToken(name: "scraper-name");

        using var anonymous = server.Http();
        var response = await anonymous.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // Server:Metrics:RequireToken is off by default
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(1, Sample(text, "survey6_joins_accepted_total"));
        foreach (var identifier in new[] { joined.ProbeId, "secret-host-name", token[..6], apiToken.Split('_')[1], certificate.SerialNumber })
            Assert.DoesNotContain(identifier, text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Metrics_can_require_an_api_token()
    {
        await using var server = await ServerHarness.StartAsync(new Dictionary<string, string?> { ["Server:Metrics:RequireToken"] = "true" });
        using var anonymous = server.Http();
        var refused = await anonymous.SendJsonAsync(HttpMethod.Get, "/metrics");
        ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, refused);

        using var client = server.Http(server.CreateApiToken(name: "prometheus"));
        Assert.Contains("survey6_probes{state=\"pending\"} 0", await client.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_are_not_served_on_the_probe_endpoint_and_can_be_turned_off()
    {
        await using (var server = await ServerHarness.StartAsync())
        {
            using var tls = server.Tls();
            Assert.Equal(HttpStatusCode.NotFound, (await tls.GetAsync("/metrics")).StatusCode);
        }

        await using (var server = await ServerHarness.StartAsync(new Dictionary<string, string?> { ["Server:Metrics:Enabled"] = "false" }))
        {
            using var http = server.Http();
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/metrics")).StatusCode);
        }
    }

    [Fact]
    public async Task The_grpc_health_service_answers_serving_over_tls_without_a_client_certificate()
    {
        await using var server = await ServerHarness.StartAsync();
        using var channel = server.Channel();
        var health = new Health.HealthClient(channel);
        var reply = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);

        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await health.CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        // Anonymous health checks are not refusals.
        Assert.Equal(0, server.Counters.Sum(ServerCounters.AuthenticationRefusedPrefix));
    }

    /// <summary>The value of one series in Prometheus text format; fails if it is not there.</summary>
    [Fact]
    public async Task A_data_disk_filled_below_the_floor_shows_in_healthz_metrics_and_server_probes()
    {
        const long floor = 8L << 20;
        using var disk = new Tmpfs("32m");
        var data = Path.Combine(disk.Path, "data");
        using var server = await ServerProcess.StartAsync(data, 0,
            environment: new Dictionary<string, string> { ["Server__Uploads__MinFreeDiskBytes"] = floor.ToString(CultureInfo.InvariantCulture) },
            httpListen: "127.0.0.1:0");
        using var http = new HttpClient { BaseAddress = server.HttpUrl };
        Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        var roomy = await http.GetStringAsync("/metrics");
        Assert.True(Sample(roomy, "survey6_data_directory_free_bytes") > floor);
        Assert.Equal(floor, Sample(roomy, "survey6_data_directory_floor_bytes"));
        Assert.Equal(0, Sample(roomy, "survey6_server_degraded"));

        // Fill the file system the data directory is on until less than the floor stays free, as captures would.
        await using (var filler = File.Create(Path.Combine(disk.Path, "filler")))
        {
            var chunk = new byte[1 << 20];
            while (new DriveInfo(disk.Path).AvailableFreeSpace >= floor / 2)
                await filler.WriteAsync(chunk);
            await filler.FlushAsync();
        }

        var healthz = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, healthz.StatusCode);
        var reason = await healthz.Content.ReadAsStringAsync();
        Assert.StartsWith("degraded: the data directory " + data + " has ", reason, StringComparison.Ordinal);
        Assert.Contains("below the floor of 8 MiB (Server:Uploads:MinFreeDiskBytes)", reason, StringComparison.Ordinal);
        var full = await http.GetStringAsync("/metrics");
        Assert.True(Sample(full, "survey6_data_directory_free_bytes") < floor);
        Assert.Equal(1, Sample(full, "survey6_server_degraded"));

        // server probes, as an operator runs it beside the server, with the server's configuration.
        var config = Path.Combine(Path.GetTempPath(), $"survey6-floor-{Guid.NewGuid():n}.json");
        await File.WriteAllTextAsync(config, $"{{\"Server\": {{\"Uploads\": {{\"MinFreeDiskBytes\": {floor}}}}}}}");
        try
        {
            var probes = Tool.Run(Tool.Dotnet(), Path.Combine(AppContext.BaseDirectory, "survey6.dll"), "server", "probes", "--data-dir", data, "--config", config).Check();
            Assert.StartsWith("server: degraded: the data directory " + data, probes.Stderr, StringComparison.Ordinal);
            Assert.Contains("below the floor of 8 MiB", probes.Stderr, StringComparison.Ordinal); // the configuration's floor, not the default
        }
        finally
        {
            File.Delete(config);
        }
    }

    internal static double Sample(string text, string series)
    {
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no series {series} in:\n{text}");
        return double.Parse(line[(series.Length + 1)..].Trim(), CultureInfo.InvariantCulture);
    }
}

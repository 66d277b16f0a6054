using System.Net;
using System.Text.Json;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Probe.Join;
using Survey6.Server.Api;
using Survey6.Server.Storage;
using UploadHeader = Survey6.Server.Storage.UploadHeader;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ApiEndpointTests : IAsyncLifetime
{
    private ServerHarness _server = null!;
    private HttpClient _api = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        _api = _server.Http(_server.CreateApiToken(name: "ops"));
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Probes_list_and_detail_have_the_documented_shape()
    {
        var token = _server.CreateToken(labels: new Dictionary<string, string> { ["site"] = "lab" });
        var facts = new HostFacts
        {
            Hostname = "edge-1",
            Os = "Debian GNU/Linux 12 (bookworm)",
            Kernel = "6.1.0",
            SoftwareVersion = "0.1.0",
            Location = new Location { Latitude = 52.1, Longitude = 4.3, Country = "NL", City = "Den Haag" },
        };
        facts.Labels["role"] = "edge";
        facts.Interfaces.Add(new Interface { Name = "eth0", Mac = "02:00:00:00:00:01", Addresses = { "2001:db8::1/64" } });
        var (joined, certificate) = await _server.JoinAsync(token, facts);
        using var _ = certificate;

        var list = await _api.GetOkAsync("/api/v1/probes");
        Assert.Equal(JsonValueKind.Null, list.GetProperty("next_cursor").ValueKind);
        var probe = list.GetProperty("items").EnumerateArray().Single();
        Assert.Superset(
            new HashSet<string>(["id", "state", "state_reasons", "last_heartbeat", "hostname", "labels", "location", "version", "cert_not_after",
                "cert_serial", "joined_at", "joined_from", "token_id", "left_at", "leave_reason"]),
            probe.Names());
        Assert.Equal(joined.ProbeId, probe.GetProperty("id").GetString());
        Assert.Equal("pending", probe.GetProperty("state").GetString());
        // Health rules name why a probe is pending (joined, never reported); no heartbeat yet.
        Assert.NotEmpty(probe.GetProperty("state_reasons").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, probe.GetProperty("last_heartbeat").ValueKind);
        Assert.Equal("edge-1", probe.GetProperty("hostname").GetString());
        Assert.Equal("lab", probe.GetProperty("labels").GetProperty("site").GetString());
        Assert.Equal("edge", probe.GetProperty("labels").GetProperty("role").GetString());
        Assert.Equal(52.1, probe.GetProperty("location").GetProperty("latitude").GetDouble());
        Assert.Equal("Den Haag", probe.GetProperty("location").GetProperty("city").GetString());
        Assert.Equal("0.1.0", probe.GetProperty("version").GetString());
        Assert.Equal(joined.NotAfter.ToDateTimeOffset(), probe.GetProperty("cert_not_after").GetDateTimeOffset());
        Assert.Equal("127.0.0.1", probe.GetProperty("joined_from").GetString());

        var detail = await _api.GetOkAsync("/api/v1/probes/" + joined.ProbeId);
        Assert.Equal(joined.ProbeId, detail.GetProperty("id").GetString());
        var hostFacts = detail.GetProperty("facts");
        Assert.Equal("6.1.0", hostFacts.GetProperty("kernel").GetString());
        Assert.Equal("0.1.0", hostFacts.GetProperty("software_version").GetString());
        Assert.Equal("2001:db8::1/64", hostFacts.GetProperty("interfaces")[0].GetProperty("addresses")[0].GetString());
        var issued = detail.GetProperty("certificates").EnumerateArray().Single();
        Assert.Equal(certificate.SerialNumber, issued.GetProperty("serial").GetString());
        Assert.Equal(JsonValueKind.Null, issued.GetProperty("revoked_at").ValueKind);

        var history = (await _api.GetOkAsync($"/api/v1/probes/{joined.ProbeId}/history")).GetProperty("items").EnumerateArray().Single();
        Assert.Equal("pending", history.GetProperty("state").GetString());

        var events = (await _api.GetOkAsync($"/api/v1/probes/{joined.ProbeId}/events")).GetProperty("items").EnumerateArray().ToList();
        var joinedEvent = Assert.Single(events);
        Assert.Equal(EventKinds.ProbeJoined, joinedEvent.GetProperty("kind").GetString());
        Assert.Equal(joined.ProbeId, joinedEvent.GetProperty("probe_id").GetString());

        Assert.Empty((await _api.GetOkAsync("/api/v1/probes?state=healthy")).GetProperty("items").EnumerateArray());
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/probes?state=happy"));
    }

    [Fact]
    public async Task Probes_list_is_keyset_paged_and_sorted()
    {
        var token = _server.CreateToken(uses: 3);
        var ids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var host in new[] { "beta", "alpha", "gamma" })
        {
            var (joined, certificate) = await _server.JoinAsync(token, new HostFacts { Hostname = host });
            certificate.Dispose();
            ids[host] = joined.ProbeId;
        }

        // Oldest join first by default (the harness's clock stands still, so the id breaks the tie); the cursor of a
        // full page leads to the rest, each probe once.
        var first = await _api.GetOkAsync("/api/v1/probes?limit=2");
        var cursor = first.GetProperty("next_cursor").GetString()!;
        var second = await _api.GetOkAsync("/api/v1/probes?limit=2&cursor=" + Uri.EscapeDataString(cursor));
        Assert.Equal(
            ids.Values.Order(StringComparer.Ordinal),
            first.GetProperty("items").EnumerateArray().Concat(second.GetProperty("items").EnumerateArray()).Select(p => p.GetProperty("id").GetString()));
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next_cursor").ValueKind);

        var byName = await _api.GetOkAsync("/api/v1/probes?sort=-name&limit=2");
        Assert.Equal(["gamma", "beta"], byName.GetProperty("items").EnumerateArray().Select(p => p.GetProperty("hostname").GetString()));
        var rest = await _api.GetOkAsync("/api/v1/probes?sort=-name&limit=2&cursor=" + Uri.EscapeDataString(byName.GetProperty("next_cursor").GetString()!));
        Assert.Equal(["alpha"], rest.GetProperty("items").EnumerateArray().Select(p => p.GetProperty("hostname").GetString()));

        // What the user sees for a wrong order, a cursor from another order, and a page too long.
        Assert.Contains("sort must be one of name, state", ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/probes?sort=colour")), StringComparison.Ordinal);
        Assert.Equal("cursor is not one this list returned", ApiTestSupport.AssertProblem(
            HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/probes?sort=state&cursor=" + Uri.EscapeDataString(cursor))));
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/probes?limit=0"));
    }

    [Fact]
    public async Task Unknown_probes_are_404_problems()
    {
        foreach (var path in new[] { "/api/v1/probes/p-aaaaaaaaaaaa", "/api/v1/probes/p-aaaaaaaaaaaa/history", "/api/v1/probes/p-aaaaaaaaaaaa/events" })
            Assert.Equal("no probe p-aaaaaaaaaaaa", ApiTestSupport.AssertProblem(HttpStatusCode.NotFound, await _api.SendJsonAsync(HttpMethod.Get, path)));
        ApiTestSupport.AssertProblem(HttpStatusCode.NotFound, await _api.SendJsonAsync(HttpMethod.Post, "/api/v1/probes/p-aaaaaaaaaaaa/revoke"));
        ApiTestSupport.AssertProblem(HttpStatusCode.NotFound, await _api.SendJsonAsync(HttpMethod.Delete, "/api/v1/tokens/zzzzzz"));
    }

    [Fact]
    public async Task A_token_created_through_the_api_enrols_a_probe_with_its_join_command()
    {
        var (status, created, response) = await _api.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens",
            """{"ttl": "2h", "uses": 2, "labels": {"site": "dc1", "rackRow": "4"}, "description": "rack 4"}""");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var token = created.GetProperty("token").GetString()!;
        var join = created.GetProperty("join_command").GetString()!;
        Assert.Equal(_server.Pki.Authority.Pin, created.GetProperty("ca_hash").GetString());
        Assert.Equal($"survey6 probe join --server {created.GetProperty("server_url").GetString()} --token {token} --ca-hash {_server.Pki.Authority.Pin}", join);
        var info = created.GetProperty("info");
        Assert.Equal("active", info.GetProperty("status").GetString());
        Assert.Equal(2, info.GetProperty("max_uses").GetInt32());
        Assert.Equal("rack 4", info.GetProperty("description").GetString());
        Assert.Equal(_server.Time.GetUtcNow().AddHours(2), info.GetProperty("expires_at").GetDateTimeOffset());

        // Run what the command says, as a probe host would.
        var args = join.Split(' ');
        string Arg(string name) => args[Array.IndexOf(args, name) + 1];
        var state = Path.Combine(_server.Root, "probe");
        var result = await ProbeJoinClient.JoinAsync(new JoinSettings(
            new Uri(Arg("--server")), Arg("--token"), Arg("--ca-hash"), state, new Dictionary<string, string>(), null) { Timeout = TimeSpan.FromSeconds(15) });

        var probe = await _api.GetOkAsync("/api/v1/probes/" + result.ProbeId);
        Assert.Equal("dc1", probe.GetProperty("labels").GetProperty("site").GetString());
        Assert.Equal("4", probe.GetProperty("labels").GetProperty("rackRow").GetString()); // label keys are data: no snake_case
        Assert.Equal(info.GetProperty("id").GetString(), probe.GetProperty("token_id").GetString());

        var listed = (await _api.GetOkAsync("/api/v1/tokens")).GetProperty("items").EnumerateArray().Single();
        Assert.Equal(1, listed.GetProperty("used").GetInt32());
        Assert.False(listed.TryGetProperty("token", out _), "a listed token must not carry its secret");

        // Revoked through the API: the second use is refused.
        var tokenId = info.GetProperty("id").GetString()!;
        Assert.Equal(HttpStatusCode.NoContent, (await _api.SendJsonAsync(HttpMethod.Delete, "/api/v1/tokens/" + tokenId)).Status);
        var refused = await Assert.ThrowsAsync<RpcException>(() => _server.JoinAsync(token));
        Assert.Equal("join refused: token revoked", refused.Status.Detail);
        Assert.Equal("revoked", (await _api.GetOkAsync("/api/v1/tokens")).GetProperty("items")[0].GetProperty("status").GetString());
        Assert.Contains(_server.Events.Recent(20), e => e.Kind == ApiEventKinds.JoinTokenRevoked && e.Detail.Contains("(ops)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Token_creation_checks_its_input()
    {
        var bad = await _api.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens", """{"ttl": "soon", "uses": 0, "description": "x"}""");
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, bad);
        Assert.Superset(new HashSet<string>(["ttl", "uses"]), bad.Body.GetProperty("errors").Names());

        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens", "{not json"));
        Assert.Empty(_server.Tokens.List());

        // No body at all: the defaults (24 hours, one use).
        var (status, created, _) = await _api.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens");
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.Equal(1, created.GetProperty("info").GetProperty("max_uses").GetInt32());
        Assert.Equal(_server.Time.GetUtcNow().AddHours(24), created.GetProperty("info").GetProperty("expires_at").GetDateTimeOffset());
    }

    [Fact]
    public async Task Revoking_a_probe_through_the_api_stops_its_certificate()
    {
        var (joined, certificate) = await _server.JoinAsync(_server.CreateToken());
        using var _ = certificate;

        var (status, probe, _) = await _api.SendJsonAsync(HttpMethod.Post, $"/api/v1/probes/{joined.ProbeId}/revoke", """{"reason": "stolen laptop"}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("revoked", probe.GetProperty("state").GetString());
        var reason = probe.GetProperty("state_reasons")[0].GetString()!;
        Assert.Contains("revoked by api-token ", reason, StringComparison.Ordinal);
        Assert.EndsWith("(ops): stolen laptop", reason, StringComparison.Ordinal);
        Assert.NotEqual(JsonValueKind.Null, probe.GetProperty("certificates")[0].GetProperty("revoked_at").ValueKind);

        var e = await Assert.ThrowsAsync<RpcException>(async () => await _server.Enrollment(certificate).LeaveAsync(new LeaveRequest()));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("certificate revoked", e.Status.Detail, StringComparison.Ordinal);

        var history = (await _api.GetOkAsync($"/api/v1/probes/{joined.ProbeId}/history")).GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(["revoked", "pending"], history.Select(h => h.GetProperty("state").GetString()));

        // Again: still 200, nothing new recorded.
        Assert.Equal(HttpStatusCode.OK, (await _api.SendJsonAsync(HttpMethod.Post, $"/api/v1/probes/{joined.ProbeId}/revoke")).Status);
        Assert.Single(_server.Events.Recent(50, EventKinds.ProbeRevoked));
    }

    [Fact]
    public async Task Events_page_through_every_item_once_newest_first()
    {
        for (int i = 0; i < 23; i++)
            _server.Events.Append("test_event", i % 2 == 0 ? "p-aaaaaaaaaaaa" : null, "127.0.0.1", "n" + i);

        var seen = new List<long>();
        string? cursor = null;
        int pages = 0;
        do
        {
            var page = await _api.GetOkAsync("/api/v1/events?kind=test_event&limit=10" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("id").GetInt64()));
            cursor = page.GetProperty("next_cursor").GetString();
            pages++;
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(23, seen.Count);
        Assert.Equal(seen.OrderByDescending(id => id), seen);
        Assert.Equal(23, seen.Distinct().Count());

        var probeEvents = await _api.GetOkAsync("/api/v1/events?probe=p-aaaaaaaaaaaa&limit=5");
        Assert.Equal(5, probeEvents.GetProperty("items").GetArrayLength());
        Assert.All(probeEvents.GetProperty("items").EnumerateArray(), e => Assert.Equal("p-aaaaaaaaaaaa", e.GetProperty("probe_id").GetString()));

        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/events?cursor=garbage"));
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/events?limit=0"));
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/events?limit=100000"));
    }

    [Fact]
    public async Task Uploads_list_stored_captures_newest_first_in_pages()
    {
        var store = new CaptureStore(
            Microsoft.Extensions.Options.Options.Create(new CaptureStoreOptions { DataDirectory = _server.DataDirectory }),
            CaptureStoredSink.FromDelegate((_, _) => ValueTask.CompletedTask), timeProvider: _server.Time);
        var shas = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            var probe = i < 3 ? "p-aaaaaaaaaaaa" : "p-bbbbbbbbbbbb";
            var data = Captures.Pcapng(i, probe);
            var header = new UploadHeader(Captures.Sha(data), data.Length, Captures.Window, Captures.Window.AddMinutes(10), "");
            await using (var upload = await store.BeginAsync(probe, header))
            {
                await upload.WriteAsync(0, data);
                await upload.CompleteAsync(header.Sha256);
            }

            shas.Add(header.Sha256);
            if (i != 1)
                _server.Time.Advance(TimeSpan.FromSeconds(1)); // two captures share a time: the sha orders them
        }

        var seen = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var page = await _api.GetOkAsync("/api/v1/uploads?limit=2" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            Assert.InRange(page.GetProperty("items").GetArrayLength(), 1, 2);
            seen.AddRange(page.GetProperty("items").EnumerateArray());
            cursor = page.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal(5, seen.Count);
        Assert.Equal(shas.ToHashSet(), seen.Select(u => u.GetProperty("sha256").GetString()!).ToHashSet());
        var times = seen.Select(u => u.GetProperty("received_at").GetDateTimeOffset()).ToList();
        Assert.Equal(times.OrderByDescending(t => t), times);
        var newest = seen[0];
        Assert.Equal(shas[4], newest.GetProperty("sha256").GetString());
        Assert.Equal("p-bbbbbbbbbbbb", newest.GetProperty("probe_id").GetString());
        Assert.Equal("pcapng", newest.GetProperty("format").GetString());
        Assert.Equal("queued", newest.GetProperty("status").GetString());
        Assert.Equal(Captures.Window, newest.GetProperty("window_start").GetDateTimeOffset());
        Assert.True(newest.GetProperty("size").GetInt64() > 0);

        var mine = await _api.GetOkAsync("/api/v1/uploads?probe=p-aaaaaaaaaaaa");
        Assert.Equal(3, mine.GetProperty("items").GetArrayLength());
        foreach (var outside in new[] { "..", "../server", "." })
            Assert.Empty((await _api.GetOkAsync("/api/v1/uploads?probe=" + Uri.EscapeDataString(outside))).GetProperty("items").EnumerateArray());
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await _api.SendJsonAsync(HttpMethod.Get, "/api/v1/uploads?cursor=" + PageCursor.Encode(42)));
    }
}

/// <summary>Small valid pcapng files for the capture store.</summary>
internal static class Captures
{
    public static readonly DateTimeOffset Window = new(2025, 3, 15, 2, 0, 0, TimeSpan.Zero);

    public static byte[] Pcapng(int seed, string probeId)
    {
        var random = new Random(seed);
        using var buffer = new MemoryStream();
        using (var writer = new Survey6.Packets.Capture.PcapngWriter(buffer, new Survey6.Packets.Capture.PcapngSectionInfo
        {
            UserApplication = "survey6 tests",
            Metadata = [new(Survey6.Packets.Capture.PcapngMetadata.ProbeId, probeId)],
        }, leaveOpen: true))
        {
            int eth = writer.AddInterface(new Survey6.Packets.Capture.PcapngInterfaceInfo(Survey6.Packets.Capture.LinkType.Ethernet, 65535) { Name = "eth0" });
            long time = 1_742_004_000_000_000_000L + seed;
            for (int i = 0; i < 10; i++)
            {
                var data = new byte[random.Next(60, 200)];
                random.NextBytes(data);
                writer.WritePacket(eth, time += 1000, data, (uint)data.Length);
            }
        }

        return buffer.ToArray();
    }

    public static string Sha(byte[] data) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data));
}

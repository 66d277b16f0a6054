using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Server.Api;

using Survey6.Server.Tests.Web;
using Survey6.Server.Web;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ApiAuthenticationTests : IAsyncLifetime
{
    private static readonly (HttpMethod Method, string Path)[] Endpoints =
    [
        (HttpMethod.Get, "/api/v1/probes"),
        (HttpMethod.Get, "/api/v1/probes/p-aaaaaaaaaaaa"),
        (HttpMethod.Get, "/api/v1/probes/p-aaaaaaaaaaaa/history"),
        (HttpMethod.Get, "/api/v1/probes/p-aaaaaaaaaaaa/events"),
        (HttpMethod.Post, "/api/v1/probes/p-aaaaaaaaaaaa/revoke"),
        (HttpMethod.Get, "/api/v1/events"),
        (HttpMethod.Get, "/api/v1/uploads"),
        (HttpMethod.Get, "/api/v1/tokens"),
        (HttpMethod.Post, "/api/v1/tokens"),
        (HttpMethod.Delete, "/api/v1/tokens/abcdef"),
        (HttpMethod.Get, "/api/v1/openapi.json"),
    ];

    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Every_endpoint_refuses_a_call_without_a_token()
    {
        using var client = _server.Http();
        foreach (var (method, path) in Endpoints)
        {
            var result = await client.SendJsonAsync(method, path, method == HttpMethod.Post ? "{}" : null);
            var detail = ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, result);
            Assert.Contains("API token is required", detail, StringComparison.Ordinal);
            Assert.Equal("Bearer realm=\"survey6\"", result.Response.Headers.WwwAuthenticate.ToString());
        }

        // Nothing was done on the way: no token was created.
        Assert.Empty(_server.Tokens.List());
        Assert.Equal(Endpoints.Length, _server.Counters.Get("api.refused.missing"));
    }

    [Theory]
    [InlineData("not-a-token", "not an API token")]
    [InlineData("s6_aaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "unknown API token")]
    public async Task A_malformed_or_unknown_token_is_refused(string token, string expected)
    {
        using var client = _server.Http(token);
        var result = await client.SendJsonAsync(HttpMethod.Get, "/api/v1/probes");
        Assert.Contains(expected, ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, result), StringComparison.Ordinal);
        Assert.Contains("error=\"invalid_token\"", result.Response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Contains(_server.Events.Recent(10), e => e.Kind == ApiEventKinds.ApiRefused);
    }

    [Fact]
    public async Task A_wrong_secret_for_a_real_id_reads_as_unknown()
    {
        var token = _server.CreateApiToken();
        _server.Get<ApiTokenStore>().Revoke(token[3..11]);
        using var client = _server.Http(token[..^1] + (token[^1] == 'a' ? 'b' : 'a'));
        var detail = ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/probes"));
        Assert.Equal("unknown API token", detail);
    }

    [Fact]
    public async Task A_revoked_token_is_refused()
    {
        var token = _server.CreateApiToken();
        using var client = _server.Http(token);
        await client.GetOkAsync("/api/v1/probes");

        Assert.True(_server.Get<ApiTokenStore>().Revoke(token[3..11]));
        var detail = ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/probes"));
        Assert.Equal("the API token was revoked", detail);
        Assert.Equal(1, _server.Counters.Get("api.refused.revoked"));
    }

    [Fact]
    public async Task An_expired_token_is_refused()
    {
        var token = _server.CreateApiToken(TimeSpan.FromHours(1));
        using var client = _server.Http(token);
        await client.GetOkAsync("/api/v1/tokens");

        _server.Time.Advance(TimeSpan.FromHours(1));
        var detail = ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/tokens"));
        Assert.Equal("the API token has expired", detail);
        Assert.Equal("expired", _server.Get<ApiTokenStore>().List().Single().Status(_server.Time.GetUtcNow()));
    }

    [Fact]
    public async Task A_good_token_works_and_its_last_use_is_kept()
    {
        var store = _server.Get<ApiTokenStore>();
        var token = _server.CreateApiToken(name: "grafana");
        Assert.Null(store.List().Single().LastUsedAt);
        using var client = _server.Http(token);
        await client.GetOkAsync("/api/v1/events");
        var lastUsed = store.List().Single().LastUsedAt;
        Assert.NotNull(lastUsed);
        Assert.True((_server.Time.GetUtcNow() - lastUsed.Value).Duration() < TimeSpan.FromMilliseconds(1), "state.db keeps milliseconds");
        Assert.Equal("active", store.List().Single().Status(_server.Time.GetUtcNow()));
    }

    [Fact]
    public async Task The_api_is_not_served_on_the_probe_endpoint()
    {
        var token = _server.CreateApiToken();
        using var tls = _server.Tls(token);
        Assert.Equal(HttpStatusCode.NotFound, (await tls.GetAsync("/api/v1/probes")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await tls.GetAsync("/api/v1/openapi.json")).StatusCode);
        // What probes need there still is.
        Assert.Equal(HttpStatusCode.OK, (await tls.GetAsync("/v1/ca.pem")).StatusCode);
    }

    [Fact]
    public async Task Unknown_api_paths_and_bad_queries_answer_with_problem_details()
    {
        using var client = _server.Http(_server.CreateApiToken());
        ApiTestSupport.AssertProblem(HttpStatusCode.NotFound, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/nosuch"));
        ApiTestSupport.AssertProblem(HttpStatusCode.BadRequest, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/events?limit=many"));
        ApiTestSupport.AssertProblem(HttpStatusCode.MethodNotAllowed, await client.SendJsonAsync(HttpMethod.Put, "/api/v1/probes", "{}"));
    }

    [Fact]
    public async Task The_web_ui_session_cookie_also_authorizes_the_api()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword("correct horse battery");
        using var client = WebLogin.Client(server);

        // Without the cookie: still a 401 with Problem Details, not the cookie scheme's redirect to a login page.
        ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/probes"));

        await WebLogin.LoginAsync(client, "correct horse battery");
        await client.GetOkAsync("/api/v1/probes");
        // Writes carry a page's antiforgery token (CrossSiteRequestTests shows why).
        client.DefaultRequestHeaders.Add(ApiAuthentication.AntiforgeryHeader, await WebLogin.TokenAsync(client, "/tokens"));
        var created = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens", "{}");
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Contains(server.Events.Recent(10), e => e.Kind == ApiEventKinds.JoinTokenCreated && e.Detail.EndsWith("by user admin", StringComparison.Ordinal));

        // A bearer token works beside it.
        using var bearer = server.Http(server.CreateApiToken());
        await bearer.GetOkAsync("/api/v1/probes");
    }
}

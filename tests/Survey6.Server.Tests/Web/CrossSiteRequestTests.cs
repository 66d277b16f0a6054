using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Survey6.Server.Api;
using Survey6.Server.Storage;
using static Microsoft.Playwright.Assertions;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// Cross-site request forgery against the API through the web UI's session cookie: a page on another port of the
/// same host counts as the same site, so SameSite=Strict sends the cookie along.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Browser)]
public sealed class CrossSiteRequestTests
{
    [Fact]
    public async Task A_page_on_another_port_cannot_revoke_a_probe_through_the_logged_in_admins_cookie()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, _) = await ui.JoinAsync("target");
        await ui.LoginAsync();

        var target = ui.Url($"/api/v1/probes/{probeId}/revoke");
        await using var attacker = await AttackerSite.StartAsync($$"""
            <!doctype html><title>loading</title>
            <script>
            fetch("{{target}}", { method: "POST", mode: "no-cors", credentials: "include" })
              .then(() => { document.title = "sent"; }, e => { document.title = "failed " + e; });
            </script>
            """);
        Assert.NotEqual(new Uri(ui.Url("/")).Port, attacker.Url.Port);
        await ui.Page.GotoAsync(attacker.Url.ToString());
        await Expect(ui.Page).ToHaveTitleAsync("sent");

        // The answer came back (opaque to the page): the request was handled, with the session cookie, and refused.
        Assert.NotEqual(ProbeStates.Revoked, ui.Server.Probes.Get(probeId)!.State);
        Assert.Equal(1, ui.Server.Counters.Get("api.refused.csrf"));

        // The browser session itself still works: its pages and forms.
        await ui.Page.GotoAsync(ui.Url("/probes/" + probeId));
        await Expect(ui.Page.Locator("h1")).ToHaveTextAsync(probeId);
    }

    [Fact]
    public async Task Cookie_writes_to_the_api_need_the_antiforgery_header_and_bearer_tokens_do_not()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<Survey6.Server.Web.WebAdminStore>().SetPassword("correct horse battery");
        using var client = WebLogin.Client(server);
        await WebLogin.LoginAsync(client, "correct horse battery");

        // Reads need nothing more than the cookie.
        await client.GetOkAsync("/api/v1/probes");

        // A write with the cookie alone, as a simple request (no body, like the forged one) or as JSON: refused.
        var (probe, _) = await server.JoinAsync(server.CreateToken());
        using (var simple = await client.PostAsync(new Uri($"/api/v1/probes/{probe.ProbeId}/revoke", UriKind.Relative), null))
            Assert.Equal(HttpStatusCode.Forbidden, simple.StatusCode);
        Assert.NotEqual(ProbeStates.Revoked, server.Probes.Get(probe.ProbeId)!.State);

        var refused = await client.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens", "{}");
        var detail = ApiTestSupport.AssertProblem(HttpStatusCode.Forbidden, refused);
        Assert.Contains(ApiAuthentication.AntiforgeryHeader, detail, StringComparison.Ordinal);
        Assert.Single(server.Tokens.List()); // the probe's join token only

        // With the antiforgery token of a page in the header: accepted.
        var token = await WebLogin.TokenAsync(client, "/tokens");
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/tokens") { Content = new StringContent("{}", Encoding.UTF8, "application/json") })
        {
            request.Headers.Add(ApiAuthentication.AntiforgeryHeader, token);
            Assert.Equal(HttpStatusCode.Created, (await client.SendAsync(request)).StatusCode);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/tokens") { Content = new StringContent("{}", Encoding.UTF8, "application/json") })
        {
            request.Headers.Add(ApiAuthentication.AntiforgeryHeader, "forged");
            Assert.Equal(HttpStatusCode.Forbidden, (await client.SendAsync(request)).StatusCode);
        }

        // Bearer tokens are unchanged.
        using var bearer = server.Http(server.CreateApiToken());
        Assert.Equal(HttpStatusCode.Created, (await bearer.SendJsonAsync(HttpMethod.Post, "/api/v1/tokens", "{}")).Status);
        Assert.Equal(3, server.Tokens.List().Count);
    }

    /// <summary>A page served from another port of 127.0.0.1: the same site as the server, another origin.</summary>
    private sealed class AttackerSite : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private AttackerSite(WebApplication app, Uri url)
        {
            _app = app;
            Url = url;
        }

        public Uri Url { get; }

        public static async Task<AttackerSite> StartAsync(string html)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.MapGet("/", () => Results.Content(html, "text/html; charset=utf-8"));
            await app.StartAsync();
            var address = app.Urls.Single();
            return new AttackerSite(app, new Uri(address + "/"));
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}

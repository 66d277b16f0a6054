using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Survey6.Contracts.V1;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Survey6.Server.Web;
using static Microsoft.Playwright.Assertions;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

[Trait(TestCategory.Name, TestCategory.Browser)]
public sealed partial class WebUiTests
{
    [Fact]
    public async Task Unauthenticated_page_redirects_to_login_and_the_right_password_gets_in()
    {
        await using var ui = await WebUi.StartAsync();
        await ui.Page.GotoAsync(ui.Url("/probes/p-whatever"));
        await Expect(ui.Page).ToHaveURLAsync(LoginUrl());

        await ui.SubmitLoginAsync("not the password");
        await Expect(ui.Page.Locator("#login-error")).ToContainTextAsync("Wrong user name or password");
        await Expect(ui.Page).ToHaveURLAsync(new Regex("/login$"));

        await ui.SubmitLoginAsync(WebUi.Password);
        await Expect(ui.Page).ToHaveURLAsync(new Regex("/probes/p-whatever$"));
        await ui.Page.GotoAsync(ui.Url("/"));
        await Expect(ui.Page.Locator("h1")).ToHaveTextAsync("Fleet");

        var headers = (await ui.Page.GotoAsync(ui.Url("/")))!.Headers;
        Assert.Contains("default-src 'self'", headers["content-security-policy"], StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", headers["content-security-policy"], StringComparison.Ordinal);
        Assert.Equal("nosniff", headers["x-content-type-options"]);
        Assert.Equal("no-referrer", headers["referrer-policy"]);

        using var http = ui.Http();
        var response = await http.GetAsync(new Uri("/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/login", response.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await http.GetAsync(new Uri("/events/fleet", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Five_failed_logins_lock_the_account_for_five_minutes()
    {
        await using var ui = await WebUi.StartAsync();
        await ui.Page.GotoAsync(ui.Url("/login"));
        for (var i = 1; i <= 4; i++)
        {
            await ui.SubmitLoginAsync("wrong " + i);
            await Expect(ui.Page.Locator("#login-error")).ToContainTextAsync("Wrong user name or password");
        }

        await ui.SubmitLoginAsync("wrong 5");
        await Expect(ui.Page.Locator("#login-error")).ToContainTextAsync("locked");
        await ui.SubmitLoginAsync(WebUi.Password);
        await Expect(ui.Page.Locator("#login-error")).ToContainTextAsync("locked");

        ui.Server.Time.Advance(TimeSpan.FromMinutes(4));
        await ui.SubmitLoginAsync(WebUi.Password);
        await Expect(ui.Page.Locator("#login-error")).ToContainTextAsync("locked");

        ui.Server.Time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await ui.SubmitLoginAsync(WebUi.Password);
        await Expect(ui.Page).ToHaveURLAsync(WebUi.FleetUrl());
    }

    [Fact]
    public async Task Posts_without_the_antiforgery_token_are_refused()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, _) = await ui.JoinAsync("forged");
        using var http = ui.Http();

        // Login without a token: refused even with the right password.
        var forgedLogin = await http.PostAsync(new Uri("/login", UriKind.Relative), Form(("username", "admin"), ("password", WebUi.Password)));
        Assert.Equal(HttpStatusCode.BadRequest, forgedLogin.StatusCode);

        // Log in properly, then post a command without the token.
        await WebLogin.LoginAsync(http, WebUi.Password);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);

        var forged = await http.PostAsync(new Uri($"/probes/{probeId}/suspend", UriKind.Relative), Form());
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        var wrong = await http.PostAsync(new Uri($"/probes/{probeId}/suspend", UriKind.Relative), Form(("__af", "bogus")));
        Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        Assert.Empty(ui.Server.Get<ProbeCommands>().List(probeId));

        // The session cookie is accepted by the API policy too.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/api/v1/probes", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Fleet_page_lists_joined_probes_and_updates_a_badge_live()
    {
        await using var ui = await WebUi.StartAsync();
        var joined = new List<string>();
        for (var i = 0; i < 3; i++)
            joined.Add((await ui.JoinAsync($"host-{i}")).ProbeId);
        var (liveId, certificate) = await ui.JoinAsync("host-live");
        joined.Add(liveId);

        await ui.LoginAsync();
        await Expect(ui.Page.Locator("#fleet tbody tr")).ToHaveCountAsync(joined.Count);
        await Expect(ui.Page.Locator("[data-count=total]")).ToHaveTextAsync(joined.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var id in joined)
            await Expect(ui.Page.Locator($"#probe-{id}")).ToContainTextAsync("site=lab");
        await Expect(ui.Page.Locator("#probe-" + liveId)).ToContainTextAsync("host-live");
        var badge = ui.Page.Locator($"#probe-{liveId} .badge");
        await Expect(badge).ToHaveTextAsync(ProbeStates.Pending);
        await Expect(ui.Page.Locator("body[data-live='1']")).ToHaveCountAsync(1);

        // Mark the document: a reload would lose the mark.
        await ui.Page.EvaluateAsync("() => { window.notReloaded = true; }");
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server));
        await Expect(badge).ToHaveTextAsync(ProbeStates.Healthy);
        await Expect(ui.Page.Locator($"#probe-{liveId}")).ToContainTextAsync("0.1.0-test");
        await Expect(ui.Page.Locator("[data-count=healthy]")).ToHaveTextAsync("1");
        Assert.True(await ui.Page.EvaluateAsync<bool>("() => window.notReloaded === true"));
    }

    [Fact]
    public async Task Suspend_clicked_in_the_probe_page_reaches_the_probe()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, certificate) = await ui.JoinAsync("suspend-me");
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server));

        await ui.LoginAsync();
        await ui.Page.ClickAsync($"#probe-{probeId} a");
        await Expect(ui.Page.Locator("h1")).ToHaveTextAsync(probeId);

        var dialogs = new List<string>();
        ui.Page.Dialog += (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            _ = dialog.AcceptAsync();
        };
        await ui.Page.ClickAsync("#suspend");
        var command = await stream.NextCommandAsync();
        Assert.Equal(CommandKind.Suspend, command.Kind);
        Assert.Contains(dialogs, d => d.Contains("Suspend", StringComparison.Ordinal));
        await Expect(ui.Page.Locator("#notice")).ToContainTextAsync("suspend issued as " + command.Id);
        var issued = Assert.Single(ui.Server.Get<ProbeCommands>().List(probeId));
        Assert.Equal("web:admin", issued.IssuedBy);

        await ui.Page.ClickAsync("#resume");
        Assert.Equal(CommandKind.Resume, (await stream.NextCommandAsync()).Kind);
    }

    [Fact]
    public async Task Dismissed_confirm_sends_nothing()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, _) = await ui.JoinAsync("keep-me");
        await ui.LoginAsync();
        await ui.Page.GotoAsync(ui.Url("/probes/" + probeId));
        var dismiss = true;
        ui.Page.Dialog += (_, dialog) => _ = dismiss ? dialog.DismissAsync() : dialog.AcceptAsync();
        await ui.Page.ClickAsync("#suspend");

        // The page sends in click order: once a confirmed resume is issued, a suspend sent before it would be listed too.
        dismiss = false;
        await ui.Page.ClickAsync("#resume");
        await Expect(ui.Page.Locator("#notice")).ToContainTextAsync("resume issued as ");
        var issued = Assert.Single(ui.Server.Get<ProbeCommands>().List(probeId));
        Assert.Equal(ProbeCommandKind.Resume, issued.Kind);
    }

    private static FormUrlEncodedContent Form(params (string Key, string Value)[] fields) => WebLogin.Form(fields);

    private static Regex LoginUrl() => LoginUrlRegex();

    [GeneratedRegex(@"/login\?ReturnUrl=")]
    private static partial Regex LoginUrlRegex();
}

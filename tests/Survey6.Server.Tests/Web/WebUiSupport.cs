using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// A real server plus a headless Debian chromium driven by Playwright. No browser is ever
/// downloaded: without /usr/bin/chromium the tests fail with a message saying so.
/// </summary>
internal sealed partial class WebUi : IAsyncDisposable
{
    public const string Password = "correct horse battery";
    public const string ChromiumPath = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;
    private readonly string _profile;

    private WebUi(ServerHarness server, IPlaywright playwright, IBrowserContext browser, IPage page, string profile)
    {
        Server = server;
        _playwright = playwright;
        Browser = browser;
        Page = page;
        _profile = profile;
    }

    public ServerHarness Server { get; }

    public IBrowserContext Browser { get; }

    public IPage Page { get; }

    public string Url(string path) => new Uri(Server.Endpoints.HttpUrl!, path).ToString();

    public static async Task<WebUi> StartAsync()
    {
        if (!File.Exists(ChromiumPath))
            Assert.Fail($"The web UI tests need Debian's chromium at {ChromiumPath} (apt-get install chromium; test.sh installs it).");
        var server = await ServerHarness.StartAsync();
        server.Get<Survey6.Server.Web.WebAdminStore>().SetPassword(Password);
        var profile = TempDirectory.Create();
        IPlaywright playwright;
        IBrowserContext browser;
        try
        {
            playwright = await Playwright.CreateAsync();
            browser = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
            {
                ExecutablePath = ChromiumPath,
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--dns-prefetch-disable"],
            });
        }
        catch (PlaywrightException e)
        {
            await server.DisposeAsync();
            Assert.Fail($"Playwright could not start {ChromiumPath}: {e.Message}");
            throw;
        }

        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
        // Deadlines for a stuck page, not a slow machine: every wait ends on a positive signal.
        page.SetDefaultTimeout(60_000);
        Assertions.SetDefaultExpectTimeout(60_000);
        return new WebUi(server, playwright, browser, page, profile);
    }

    /// <summary>Fills the login form on the current page.</summary>
    public async Task SubmitLoginAsync(string password)
    {
        await Page.FillAsync("#username", "admin");
        await Page.FillAsync("#password", password);
        await Page.ClickAsync("#login");
    }

    public async Task LoginAsync()
    {
        await Page.GotoAsync(Url("/login"));
        await SubmitLoginAsync(Password);
        await WaitForFleetPageAsync();
    }

    /// <summary>Waits until a submitted login has landed on the fleet page, or says where the browser is instead.</summary>
    public async Task WaitForFleetPageAsync()
    {
        try
        {
            // The URL and the fleet page's table are the signals, not the load event: after the login's POST and
            // redirect, the load event was once not reported to the test within a minute although the page had
            // rendered. WaitForURL is not used either: in one CI run it timed out inside its wait for a load state
            // while the browser stood on the rendered fleet page. Expect polls the URL.
            await Assertions.Expect(Page).ToHaveURLAsync(FleetUrl());
            await Page.Locator("table#fleet").WaitForAsync();
        }
        catch (Exception e) when (e is TimeoutException or PlaywrightException)
        {
            // Say where the browser stands instead (a refused login shows its message on the page).
            throw new TimeoutException($"login did not reach the fleet page; the browser is at {Page.Url} showing:\n{await Page.InnerTextAsync("body", new() { Timeout = 5000 })}", e);
        }
    }

    public static Regex FleetUrl() => FleetUrlRegex();

    /// <summary>Joins through the real join path with a token; returns the probe id and its certificate.</summary>
    public async Task<(string ProbeId, System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate)> JoinAsync(string hostname)
    {
        var token = Server.CreateToken(labels: new Dictionary<string, string> { ["site"] = "lab" });
        var (response, certificate) = await Server.JoinAsync(token, new Survey6.Contracts.V1.HostFacts { Hostname = hostname });
        return (response.ProbeId, certificate);
    }

    /// <summary>An HttpClient with its own cookie jar that does not follow redirects.</summary>
    public HttpClient Http() => WebLogin.Client(Server);

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        await Server.DisposeAsync();
        TempDirectory.Delete(_profile);
    }

    [GeneratedRegex(@"^http://[^/]+/$")]
    private static partial Regex FleetUrlRegex();
}

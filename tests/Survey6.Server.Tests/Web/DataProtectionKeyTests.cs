using System.Net;
using Survey6.Server.Storage;
using Survey6.Server.Web;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// The web UI's Data Protection keys outlive the server process: a restart logs nobody out and voids no form
/// (the Log out form of a page loaded before it still works).
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class DataProtectionKeyTests
{
    private const string Password = "a long password for the restart test";

    // As under its systemd unit, where the service user's home is read-only: ASP.NET Core finds no
    // ~/.aspnet/DataProtection-Keys to fall back on, so nothing but the server's own setting keeps the keys.
    private static readonly Dictionary<string, string> NoHome = new() { ["HOME"] = "/dev/null" };

    [Fact]
    public async Task A_session_and_an_open_form_survive_a_server_restart_and_the_keys_are_owner_only()
    {
        var root = TempDirectory.Create();
        var data = Path.Combine(root, "server");
        var cookies = new CookieContainer();
        string formToken;
        string firstOutput;
        using (var first = await ServerProcess.StartAsync(data, 0, environment: NoHome, httpListen: "127.0.0.1:0"))
        {
            new WebAdminStore(new SettingsStore(StateDatabase.OpenAndMigrate(Path.Combine(data, "state.db"))), TimeProvider.System).SetPassword(Password);
            using var client = Client(first.HttpUrl!, cookies);
            await WebLogin.LoginAsync(client, Password);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);
            // The fleet page's forms, as a browser tab holds them across the restart.
            formToken = await WebLogin.TokenAsync(client, "/");
            first.Kill();
            firstOutput = first.Output;
        }

        using var second = await ServerProcess.StartAsync(data, 0, environment: NoHome, httpListen: "127.0.0.1:0");
        using var again = Client(second.HttpUrl!, cookies); // cookies are per host, not per port: the same browser
        var page = await again.GetAsync(new Uri("/", UriKind.Relative));
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"the session cookie was refused after the restart: {(int)page.StatusCode} {page.Headers.Location}");
        // The Log out form of a page loaded before the restart.
        var logout = await again.PostAsync(new Uri("/logout", UriKind.Relative), WebLogin.Form(("__af", formToken)));
        Assert.True(logout.StatusCode == HttpStatusCode.Redirect, $"a form from before the restart was refused: {(int)logout.StatusCode}\n{second.Output}");
        Assert.Equal("/login", logout.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.Redirect, (await again.GetAsync(new Uri("/", UriKind.Relative))).StatusCode); // logged out now

        var keys = Path.Combine(data, "data-protection");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(keys));
        var files = Directory.GetFiles(keys);
        Assert.NotEmpty(files);
        Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
        Assert.All(files, f => Assert.EndsWith(".xml", f, StringComparison.Ordinal));
        Assert.DoesNotContain("in-memory", firstOutput + second.Output, StringComparison.OrdinalIgnoreCase);
        TempDirectory.Delete(root);
    }

    private static HttpClient Client(Uri baseAddress, CookieContainer cookies) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies, UseCookies = true })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(30),
        };
}

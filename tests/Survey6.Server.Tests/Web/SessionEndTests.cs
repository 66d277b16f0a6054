using System.Net;
using Xunit.Abstractions;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// A session cookie someone copied stops working when the admin changes the password (with the CLI, in another
/// process) or logs out: on the pages and on /api/v1. Against a real server process.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class SessionEndTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = "correct horse battery";
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task A_password_change_from_the_cli_ends_existing_sessions()
    {
        var (data, server) = await StartWithPasswordAsync();
        using var _ = server;
        try
        {
            var (browser, copied) = await LoginAndCopyAsync(server);
            using (browser)
            using (copied)
            {
                await SetPasswordAsync(data, "a brand new password");

                await AssertSessionEndedAsync(browser);
                await AssertSessionEndedAsync(copied);
                using var again = Client(server, new CookieContainer());
                await WebLogin.LoginAsync(again, "a brand new password");
                Assert.Equal(HttpStatusCode.OK, (await again.GetAsync(new Uri("/api/v1/probes", UriKind.Relative))).StatusCode);
            }
        }
        catch
        {
            output.WriteLine(server.Output);
            throw;
        }
    }

    [Fact]
    public async Task A_logout_ends_the_session_for_a_copy_of_its_cookie_too()
    {
        var (_, server) = await StartWithPasswordAsync();
        using var _ = server;
        try
        {
            var (browser, copied) = await LoginAndCopyAsync(server);
            using (browser)
            using (copied)
            {
                var token = await WebLogin.TokenAsync(browser, "/");
                var logout = await browser.PostAsync(new Uri("/logout", UriKind.Relative), WebLogin.Form(("__af", token)));
                Assert.Equal(HttpStatusCode.Redirect, logout.StatusCode);

                await AssertSessionEndedAsync(copied);
                await AssertSessionEndedAsync(browser);
            }
        }
        catch
        {
            output.WriteLine(server.Output);
            throw;
        }
    }

    /// <summary>Logs in; returns that client and a second one holding only a copy of its session cookie.</summary>
    private static async Task<(HttpClient Browser, HttpClient Copied)> LoginAndCopyAsync(ServerProcess server)
    {
        var jar = new CookieContainer();
        var browser = Client(server, jar);
        await WebLogin.LoginAsync(browser, Password);
        var session = jar.GetAllCookies().Single(c => c.Name == "survey6.session");
        var copiedJar = new CookieContainer();
        copiedJar.Add(new Cookie(session.Name, session.Value, "/", server.HttpUrl!.Host));
        var copied = Client(server, copiedJar);
        foreach (var client in new[] { browser, copied })
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/api/v1/probes", UriKind.Relative))).StatusCode);
        }

        return (browser, copied);
    }

    private static async Task AssertSessionEndedAsync(HttpClient client)
    {
        var page = await client.GetAsync(new Uri("/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.StartsWith("/login", page.Headers.Location!.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("/api/v1/probes", UriKind.Relative))).StatusCode);
    }

    private static HttpClient Client(ServerProcess server, CookieContainer jar) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = jar, UseCookies = true })
        {
            BaseAddress = server.HttpUrl,
            Timeout = TimeSpan.FromSeconds(30),
        };

    /// <summary>A server on a new data directory whose admin password was set from the CLI first, as an operator would.</summary>
    private async Task<(string Data, ServerProcess Server)> StartWithPasswordAsync()
    {
        var data = Path.Combine(_root, "server");
        Directory.CreateDirectory(data); // set-password creates no directory: a missing one is a mistyped path
        await SetPasswordAsync(data, Password);
        return (data, await ServerProcess.StartAsync(data, 0, httpListen: "127.0.0.1:0"));
    }

    private static async Task SetPasswordAsync(string data, string password)
    {
        var (status, text) = await ServerProcess.RunCliAsync(password + "\n", "server", "admin", "set-password", "--data-dir", data);
        Assert.True(status == 0, "survey6 server admin set-password: " + text);
    }
}

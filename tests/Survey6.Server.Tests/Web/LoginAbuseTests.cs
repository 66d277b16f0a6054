using System.Net;
using System.Net.Sockets;
using System.Text;
using Survey6.Server.Web;
using Xunit.Abstractions;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>Alone: it measures this process's managed heap, which tests running beside it would disturb.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HeapMeasurementCollection
{
    public const string Name = "heap measurement";
}

/// <summary>What an unauthenticated client can do to the login form: grow the server's memory, or guess in bulk.</summary>
[Collection(HeapMeasurementCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class LoginAbuseTests(ITestOutputHelper output)
{
    private const string Password = "correct horse battery";

    [Fact]
    public async Task Logins_with_120_different_million_character_user_names_do_not_grow_the_heap_and_the_lockout_still_works()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword(Password);
        var cookies = new CookieContainer();
        using var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = cookies }) { BaseAddress = server.Endpoints.HttpUrl };
        var token = await WebLogin.TokenAsync(client);
        var cookie = string.Join("; ", cookies.GetAllCookies().Select(c => $"{c.Name}={c.Value}"));

        // The attacker's requests go over raw sockets from one buffer, so that what this process keeps is the server's.
        var body = Encoding.ASCII.GetBytes($"__af={Uri.EscapeDataString(token)}&password=guess&username=000{new string('a', 1_000_000)}");
        var nameAt = body.Length - 1_000_003;
        var heap = new List<long> { GC.GetTotalMemory(forceFullCollection: true) };
        var statuses = new List<int>();
        for (int round = 0; round < 2; round++)
        {
            for (int i = 0; i < 120; i++)
            {
                Encoding.ASCII.GetBytes((round * 120 + i).ToString("D3", System.Globalization.CultureInfo.InvariantCulture), body.AsSpan(nameAt, 3));
                statuses.Add(await RawPostAsync(server.Endpoints.HttpUrl!, "/login", cookie, body));
            }

            heap.Add(GC.GetTotalMemory(forceFullCollection: true));
        }

        output.WriteLine($"managed heap after full collections: {string.Join(" -> ", heap.Select(h => $"{h / (1 << 20)} MiB"))}; answers: {string.Join(", ", statuses.GroupBy(s => s).Select(g => $"{g.Count()} x {g.Key}"))}");
        Assert.True(heap[1] - heap[0] < 16 << 20, $"120 logins grew the managed heap by {(heap[1] - heap[0]) >> 20} MiB, kept after a full collection");
        Assert.True(heap[2] - heap[0] < 16 << 20, $"240 logins grew the managed heap by {(heap[2] - heap[0]) >> 20} MiB, kept after a full collection");
        Assert.All(statuses, s => Assert.Equal(413, s));

        // The lockout still works: five wrong passwords, then even the right one is refused.
        for (int i = 1; i <= WebAdminStore.MaxFailures; i++)
        {
            var wrong = await PostLoginAsync(client, "admin", "wrong " + i);
            Assert.Equal(i < WebAdminStore.MaxFailures ? HttpStatusCode.Unauthorized : HttpStatusCode.TooManyRequests, wrong.StatusCode);
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, (await PostLoginAsync(client, "admin", Password)).StatusCode);
    }

    /// <summary>One HTTP/1.1 form POST on its own connection; returns the status code. The server may answer before the body is sent.</summary>
    private static async Task<int> RawPostAsync(Uri server, string path, string cookie, byte[] body)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(server.Host, server.Port);
        var head = Encoding.ASCII.GetBytes(
            $"POST {path} HTTP/1.1\r\nHost: {server.Authority}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        var answer = new byte[64];
        var receive = socket.ReceiveAsync(answer, SocketFlags.None);
        try
        {
            await socket.SendAsync(head, SocketFlags.None);
            await socket.SendAsync(body, SocketFlags.None);
        }
        catch (SocketException)
        {
            // Answered and closed before the whole body went out.
        }

        var received = await receive.WaitAsync(TimeSpan.FromSeconds(60));
        var statusLine = Encoding.ASCII.GetString(answer, 0, received); // "HTTP/1.1 413 ..."
        Assert.StartsWith("HTTP/1.1 ", statusLine, StringComparison.Ordinal);
        return int.Parse(statusLine.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task An_over_long_user_name_or_password_is_refused_before_it_is_checked_or_counted()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword(Password);
        using var client = WebLogin.Client(server);

        for (int i = 0; i < 2 * WebAdminStore.MaxFailures; i++)
        {
            var response = await PostLoginAsync(client, new string('u', WebAdminStore.MaxUserNameLength + 1 + i), "whatever");
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("too long", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var longPassword = await PostLoginAsync(client, "admin", new string('p', WebAdminStore.MaxPasswordLength + 1));
        Assert.Equal(HttpStatusCode.BadRequest, longPassword.StatusCode);

        // None of them counted as a failed login.
        Assert.Equal(HttpStatusCode.Redirect, (await PostLoginAsync(client, "admin", Password)).StatusCode);
    }

    [Fact]
    public async Task Failed_logins_are_remembered_per_client_address_in_a_bounded_table()
    {
        await using var server = await ServerHarness.StartAsync();
        var admin = server.Get<WebAdminStore>();
        admin.SetPassword(Password);

        // Many sources, each with a few wrong guesses under user names of its own: the table keeps a bounded number of them.
        for (int i = 0; i < 3 * WebAdminStore.MaxTrackedSources; i++)
        {
            var address = new IPAddress([0x20, 0x01, 0x0d, 0xb8, (byte)(i >> 16), (byte)(i >> 8), (byte)i, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            Assert.Equal(WebLoginResult.WrongCredentials, admin.Login("someone-" + i, "x", address));
        }

        Assert.InRange(admin.TrackedSources, 1, WebAdminStore.MaxTrackedSources);

        // A source that failed five times is locked; another source is not, until the account itself is attacked.
        var attacker = IPAddress.Parse("2001:db8:ffff:1::1");
        for (int i = 1; i < WebAdminStore.MaxFailures; i++)
            Assert.Equal(WebLoginResult.WrongCredentials, admin.Login("nobody", "x", attacker));
        Assert.Equal(WebLoginResult.LockedOut, admin.Login("nobody", "x", attacker));
        Assert.Equal(WebLoginResult.LockedOut, admin.Login("admin", Password, IPAddress.Parse("2001:db8:ffff:1::2"))); // same /64
        Assert.Equal(WebLoginResult.Ok, admin.Login("admin", Password, IPAddress.Parse("2001:db8:ffff:2::1")));
        server.Time.Advance(WebAdminStore.LockoutDuration);
        Assert.Equal(WebLoginResult.Ok, admin.Login("admin", Password, attacker));
    }

    [Fact]
    public async Task The_lockout_holds_under_100_concurrent_wrong_logins()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword(Password);
        using var client = WebLogin.Client(server);
        var token = await WebLogin.TokenAsync(client);

        var answers = await Task.WhenAll(Enumerable.Range(0, 100).Select(i =>
            client.PostAsync(new Uri("/login", UriKind.Relative), WebLogin.Form(("__af", token), ("username", "admin"), ("password", "guess " + i)))));
        var checkedAnswers = answers.Count(a => a.StatusCode == HttpStatusCode.Unauthorized);
        output.WriteLine($"{checkedAnswers} wrong-password answers, {answers.Count(a => a.StatusCode == HttpStatusCode.TooManyRequests)} locked");
        Assert.All(answers, a => Assert.Contains(a.StatusCode, new[] { HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests }));
        Assert.True(checkedAnswers < WebAdminStore.MaxFailures, $"{checkedAnswers} passwords were checked");
        Assert.Equal(HttpStatusCode.TooManyRequests, (await PostLoginAsync(client, "admin", Password)).StatusCode);
    }

    private static async Task<HttpResponseMessage> PostLoginAsync(HttpClient client, string user, string password)
    {
        var token = await WebLogin.TokenAsync(client);
        return await client.PostAsync(new Uri("/login", UriKind.Relative), WebLogin.Form(("__af", token), ("username", user), ("password", password)));
    }
}

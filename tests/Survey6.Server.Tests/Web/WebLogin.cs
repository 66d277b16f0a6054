using System.Net;
using System.Text.RegularExpressions;

namespace Survey6.Server.Tests.Web;

/// <summary>Logs in to the web UI with plain HTTP, the way a browser's form post does.</summary>
internal static partial class WebLogin
{
    /// <summary>An HttpClient with its own cookie jar that does not follow redirects.</summary>
    public static HttpClient Client(ServerHarness server) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer(), UseCookies = true })
        {
            BaseAddress = server.Endpoints.HttpUrl,
            Timeout = TimeSpan.FromSeconds(20),
        };

    /// <summary>The antiforgery token of a page's forms (its cookie lands in the client's jar).</summary>
    public static async Task<string> TokenAsync(HttpClient client, string path = "/login")
    {
        var page = await client.GetStringAsync(new Uri(path, UriKind.Relative));
        var token = TokenField().Match(page).Groups[1].Value;
        Assert.NotEmpty(token);
        return token;
    }

    public static async Task LoginAsync(HttpClient client, string password)
    {
        var token = await TokenAsync(client);
        var response = await client.PostAsync(new Uri("/login", UriKind.Relative), Form(("__af", token), ("username", "admin"), ("password", password)));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
    }

    public static FormUrlEncodedContent Form(params (string Key, string Value)[] fields) =>
        new(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));

    [GeneratedRegex("name=\"__af\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();
}

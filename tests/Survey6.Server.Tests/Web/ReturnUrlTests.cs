using System.Net;
using Survey6.Server.Web;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>After login the server redirects to <c>returnUrl</c>: only to a path of its own, never to another site.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ReturnUrlTests
{
    private const string Password = "correct horse battery";

    [Theory]
    [InlineData("/\t/evil.example")] // what /%09/evil.example decodes to; browsers drop the tab: //evil.example
    [InlineData("/\n/evil.example")] // a 500 before (a newline in a header)
    [InlineData("/\r\n/evil.example")]
    [InlineData("//evil.example")]
    [InlineData("/\\evil.example")]
    [InlineData("/path\\..\\/evil.example")]
    [InlineData("https://evil.example")]
    [InlineData("https:/evil.example")]
    [InlineData("evil.example")]
    [InlineData("/\u007f/evil.example")]
    public async Task A_return_url_that_is_not_a_plain_local_path_goes_to_the_fleet(string returnUrl)
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword(Password);
        using var client = WebLogin.Client(server);
        var response = await LoginAsync(client, returnUrl);
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("/", response.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task A_form_with_a_null_character_is_refused_as_unreadable()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword(Password);
        using var client = WebLogin.Client(server);
        var response = await LoginAsync(client, "/\u0000/evil.example");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("could not be read", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/probes/p-abcdefghijkl")]
    [InlineData("/?state=healthy&q=edge")]
    [InlineData("/tokens")]
    public async Task A_local_path_is_followed(string returnUrl)
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<WebAdminStore>().SetPassword(Password);
        using var client = WebLogin.Client(server);
        var response = await LoginAsync(client, returnUrl);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(returnUrl, response.Headers.Location!.OriginalString);
    }

    private static async Task<HttpResponseMessage> LoginAsync(HttpClient client, string returnUrl)
    {
        var token = await WebLogin.TokenAsync(client);
        return await client.PostAsync(new Uri("/login", UriKind.Relative), WebLogin.Form(("__af", token), ("username", "admin"), ("password", Password), ("returnUrl", returnUrl)));
    }
}

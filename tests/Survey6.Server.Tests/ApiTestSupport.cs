using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Text;
using System.Text.Json;
using Survey6.Probe.Join;
using Survey6.Server.Api;

namespace Survey6.Server.Tests;

/// <summary>Calls to the operator endpoint of a <see cref="ServerHarness"/>.</summary>
internal static class ApiTestSupport
{
    public static string CreateApiToken(this ServerHarness server, TimeSpan? ttl = null, string name = "test") =>
        server.Get<ApiTokenStore>().Create(name, ttl).Token;

    /// <summary>A client for the plain HTTP endpoint, with <paramref name="token"/> as bearer token if given.</summary>
    public static HttpClient Http(this ServerHarness server, string? token = null)
    {
        var client = new HttpClient { BaseAddress = server.Endpoints.HttpUrl, Timeout = TimeSpan.FromSeconds(20) };
        if (token is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>A client for the probes' TLS endpoint (HTTP/2), trusting only the server's CA.</summary>
    public static HttpClient Tls(this ServerHarness server, string? token = null)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = PinnedCa.Callback(server.Pki.Authority.PublicCertificate, _ => { }),
            },
        };
        var client = new HttpClient(handler)
        {
            BaseAddress = server.GrpcUrl,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(20),
        };
        if (token is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> SendJsonAsync(
        this HttpClient client, HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, body, response);
    }

    /// <summary>GET that must answer 200; returns the JSON body.</summary>
    public static async Task<JsonElement> GetOkAsync(this HttpClient client, string path)
    {
        var (status, body, response) = await client.SendJsonAsync(HttpMethod.Get, path);
        Assert.True(status == HttpStatusCode.OK, $"GET {path}: {(int)status} {body}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return body;
    }

    /// <summary>Checks an RFC 9457 problem response and returns its detail.</summary>
    public static string AssertProblem(HttpStatusCode expected, (HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response) result)
    {
        Assert.Equal(expected, result.Status);
        Assert.Equal("application/problem+json", result.Response.Content.Headers.ContentType?.MediaType);
        Assert.Equal((int)expected, result.Body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(result.Body.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrEmpty(result.Body.GetProperty("type").GetString()));
        return result.Body.TryGetProperty("detail", out var detail) ? detail.GetString() ?? "" : "";
    }

    /// <summary>Names of an object's properties.</summary>
    public static HashSet<string> Names(this JsonElement element) =>
        element.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
}

using System.Text.Json;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ApiOpenApiTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_document_is_valid_openapi_and_lists_every_path()
    {
        using var client = _server.Http(_server.CreateApiToken());
        var text = await client.GetStringAsync("/api/v1/openapi.json");

        var read = OpenApiDocument.Parse(text, "json", new OpenApiReaderSettings());
        Assert.Empty(read.Diagnostic?.Errors ?? []);
        var document = read.Document!;
        Assert.Empty(document.Validate(ValidationRuleSet.GetDefaultRuleSet()) ?? []);

        Assert.Equal(
            [
                "/api/v1/events", "/api/v1/probes", "/api/v1/probes/{id}", "/api/v1/probes/{id}/events", "/api/v1/probes/{id}/history",
                "/api/v1/probes/{id}/minutes", "/api/v1/probes/{id}/revoke", "/api/v1/repo", "/api/v1/tokens", "/api/v1/tokens/{id}", "/api/v1/uploads",
            ],
            document.Paths.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([HttpMethod.Get, HttpMethod.Post], document.Paths["/api/v1/tokens"].Operations!.Keys.OrderBy(m => m.Method));
        Assert.Equal("bearer", document.Components!.SecuritySchemes!["bearer"].Scheme);
        Assert.NotEmpty(document.Security!);

        // The schemas describe what the API sends: snake_case names.
        using var json = JsonDocument.Parse(text);
        var schemas = json.RootElement.GetProperty("components").GetProperty("schemas");
        var probe = schemas.EnumerateObject().First(s => s.Name == "ProbeDto").Value.GetProperty("properties");
        Assert.True(probe.TryGetProperty("cert_not_after", out _));
        Assert.True(probe.TryGetProperty("state_reasons", out _));
        var listProbes = json.RootElement.GetProperty("paths").GetProperty("/api/v1/probes").GetProperty("get");
        Assert.True(listProbes.GetProperty("responses").TryGetProperty("401", out _));
    }
}

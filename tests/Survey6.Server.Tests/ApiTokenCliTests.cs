using System.Net;
using System.Text.Json;
using Survey6.Cli;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary><c>survey6 server api-token</c> against a running server on the same data directory.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ApiTokenCliTests : IDisposable
{
    private readonly string _root = TempDirectory.Create();

    private string DataDirectory => Path.Combine(_root, "server");

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Create_use_list_and_revoke()
    {
        Directory.CreateDirectory(DataDirectory); // api-token create makes state in an existing directory, never the directory
        var (status, created, _) = await RunAsync("server", "api-token", "create", "--name", "grafana", "--ttl", "2h", "--data-dir", DataDirectory);
        Assert.Equal(0, status);
        var token = Line(created, "token: ");
        var id = Line(created, "id: ");
        Assert.Matches("^s6_[a-z2-7]{8}_[a-z2-7]{32}$", token);
        Assert.Equal(token[3..11], id);

        await using var server = await ServerHarness.StartAsync(_root);
        using var client = server.Http(token);
        await client.GetOkAsync("/api/v1/probes");

        var (_, listed, _) = await RunAsync("server", "api-token", "list", "--json", "--data-dir", DataDirectory);
        var entry = JsonDocument.Parse(listed).RootElement.EnumerateArray().Single();
        Assert.Equal(id, entry.GetProperty("id").GetString());
        Assert.Equal("grafana", entry.GetProperty("name").GetString());
        Assert.Equal("active", entry.GetProperty("status").GetString());
        Assert.NotEqual(JsonValueKind.Null, entry.GetProperty("last_used_at").ValueKind);
        Assert.False(entry.TryGetProperty("token", out _));
        foreach (var file in Directory.GetFiles(DataDirectory, "state.db*"))
            Assert.DoesNotContain(token[12..], File.ReadAllText(file), StringComparison.Ordinal);

        Assert.Equal(0, (await RunAsync("server", "api-token", "revoke", id, "--data-dir", DataDirectory)).Status);
        ApiTestSupport.AssertProblem(HttpStatusCode.Unauthorized, await client.SendJsonAsync(HttpMethod.Get, "/api/v1/probes"));
        Assert.Contains("revoked", (await RunAsync("server", "api-token", "list", "--data-dir", DataDirectory)).Output, StringComparison.Ordinal);

        var (missing, _, error) = await RunAsync("server", "api-token", "revoke", "nosuch00", "--data-dir", DataDirectory);
        Assert.Equal(ExitCodes.NotFound, missing);
        Assert.Contains("no API token nosuch00", error, StringComparison.Ordinal);
        var (badTtl, _, ttlError) = await RunAsync("server", "api-token", "create", "--ttl", "soon", "--data-dir", DataDirectory);
        Assert.Equal(ExitCodes.Usage, badTtl);
        Assert.Contains("--ttl 'soon'", ttlError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Listing_without_server_state_fails_without_creating_it()
    {
        var (status, _, error) = await RunAsync("server", "api-token", "list", "--data-dir", DataDirectory);
        Assert.Equal(ExitCodes.NotFound, status);
        Assert.Contains($"--data-dir {DataDirectory} does not exist", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(DataDirectory));
    }

    private static string Line(string output, string prefix) =>
        output.Split('\n').Single(l => l.StartsWith(prefix, StringComparison.Ordinal))[prefix.Length..].Trim();

    private static async Task<(int Status, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var status = await RootCommandFactory.Create().Parse(args)
            .InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error }, CancellationToken.None);
        return (status, output.ToString(), error.ToString());
    }
}

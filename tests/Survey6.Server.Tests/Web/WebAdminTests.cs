using Survey6.Cli;
using Survey6.Server.Storage;
using Survey6.Server.Web;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class WebAdminTests
{
    [Fact]
    public async Task First_start_stores_only_a_hash_and_set_password_replaces_it()
    {
        var root = TempDirectory.Create();
        await using (var server = await ServerHarness.StartAsync(root))
        {
            var stored = server.Get<SettingsStore>().Get(WebAdminStore.SettingKey);
            Assert.NotNull(stored);
            Assert.StartsWith("pbkdf2-sha512$", stored, StringComparison.Ordinal);
            Assert.Null(server.Get<WebAdminStore>().EnsurePassword()); // already there: not replaced
        }

        // An existing directory where no server ran yet: set-password makes its state there (a missing one is refused).
        var dataDir = Directory.CreateDirectory(Path.Combine(root, "server")).FullName;
        var output = new StringWriter();
        var previousIn = Console.In;
        Console.SetIn(new StringReader("a new password 123\n"));
        int status;
        try
        {
            status = await RootCommandFactory.Create().Parse(["server", "admin", "set-password", "--data-dir", dataDir])
                .InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = output }, CancellationToken.None);
        }
        finally
        {
            Console.SetIn(previousIn);
        }

        Assert.True(status == 0, output.ToString());
        var store = new WebAdminStore(new SettingsStore(StateDatabase.OpenAndMigrate(Path.Combine(dataDir, "state.db"))), TimeProvider.System);
        Assert.Equal(WebLoginResult.Ok, store.Login("admin", "a new password 123"));
        Assert.Equal(WebLoginResult.WrongCredentials, store.Login("admin", "nope"));
        TempDirectory.Delete(root);
    }

    [Fact]
    public async Task Web_pages_are_not_served_on_the_probe_endpoint()
    {
        await using var server = await ServerHarness.StartAsync();
        using var grpc = server.Tls();
        foreach (var path in new[] { "/", "/login", "/assets/site.js", "/events/fleet" })
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await grpc.GetAsync(new Uri(path, UriKind.Relative))).StatusCode);

        using var http = server.Http();
        var script = await http.GetAsync(new Uri("/assets/site.js", UriKind.Relative));
        Assert.Equal(System.Net.HttpStatusCode.OK, script.StatusCode);
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(new Uri("/assets/nothing.js", UriKind.Relative))).StatusCode);
    }
}

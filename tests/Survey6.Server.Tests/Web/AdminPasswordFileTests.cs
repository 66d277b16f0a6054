using System.Net;
using Xunit.Abstractions;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>The admin password a first start creates goes to an owner-only file, never to the log.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class AdminPasswordFileTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task The_first_start_writes_the_admin_password_to_an_owner_only_file_and_logs_only_where_it_is()
    {
        var data = Path.Combine(_root, "server");
        var file = Path.Combine(data, "web-admin-password");
        string password;
        using (var server = await ServerProcess.StartAsync(data, 0, httpListen: "127.0.0.1:0"))
        {
            try
            {
                Assert.True(File.Exists(file), "no password file " + file);
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
                password = File.ReadAllText(file).Trim();
                Assert.True(password.Length >= 20, "a short password: " + password.Length);
                Assert.DoesNotContain(password, server.Output, StringComparison.Ordinal);
                Assert.Contains(file, server.Output, StringComparison.Ordinal);

                using var client = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = server.HttpUrl };
                await WebLogin.LoginAsync(client, password);
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/api/v1/probes", UriKind.Relative))).StatusCode);
            }
            catch
            {
                output.WriteLine(server.Output);
                throw;
            }
        }

        // A second start leaves the password and the file alone; setting a password removes the file.
        using (var server = await ServerProcess.StartAsync(data, 0, httpListen: "127.0.0.1:0"))
        {
            Assert.Equal(password, File.ReadAllText(file).Trim());
            Assert.DoesNotContain(file, server.Output, StringComparison.Ordinal);
        }

        var (status, text) = await ServerProcess.RunCliAsync("a password of my own\n", "server", "admin", "set-password", "--data-dir", data);
        Assert.True(status == 0, text);
        Assert.False(File.Exists(file));
        Assert.Contains("removed " + file, text, StringComparison.Ordinal);
    }
}

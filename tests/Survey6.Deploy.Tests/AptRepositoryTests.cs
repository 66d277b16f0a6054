using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Survey6.Deploy.Tests.Support;
using Survey6.Testing;

namespace Survey6.Deploy.Tests;

/// <summary>
/// The C&amp;C's own apt repository end to end: the packaged server (extracted from its .deb) runs on
/// loopback, the probe package is added to its repository, and apt-get — with its own sources list,
/// lists and keyring — verifies the signature, installs survey6-probe from it and later upgrades it.
/// </summary>
[Collection(PackagesCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Packages)]
public sealed class AptRepositoryTests(PackagesFixture packages) : IDisposable
{
    private readonly string _work = MakeWorkDirectory();

    [Fact]
    public async Task Apt_get_installs_and_upgrades_the_probe_from_the_servers_signed_repository()
    {
        Installed.PurgeAll();
        var root = Path.Combine(_work, "server-root");
        Tool.Run("dpkg-deb", "-x", packages.Server, root).Check();
        var survey6 = Path.Combine(root, "usr", "lib", "survey6-server", "survey6");
        var data = Path.Combine(_work, "data");
        using var server = BackgroundProcess.Start(survey6, "server", "run", "--data-dir", data, "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0");
        var httpUrl = new Uri(await server.LineAsync("http: ", TimeSpan.FromSeconds(90)));
        try
        {
            Tool.Run(survey6, "server", "repo", "add", packages.Probe, "--data-dir", data).Check();
            AssertNoAgentLeft(data);
            var key = Path.Combine(_work, "survey6.asc");
            File.WriteAllText(key, Tool.Run(survey6, "server", "repo", "key", "--data-dir", data).Check().Stdout);
            Assert.StartsWith("-----BEGIN PGP PUBLIC KEY BLOCK-----", File.ReadAllText(key), StringComparison.Ordinal);
            var source = Tool.Run(survey6, "server", "repo", "source", "--data-dir", data, "--url", httpUrl.ToString(), "--key-path", key).Check().Stdout.Trim();
            Assert.Equal($"deb [signed-by={key}] {httpUrl.ToString().TrimEnd('/')}/apt survey6 main", source);
            File.WriteAllText(Path.Combine(_work, "sources.list"), source + "\n");

            // A signed index, verified: no warning of any kind.
            var update = Apt("update").Check();
            AssertClean(update);
            Assert.Contains("Candidate: " + PackagesFixture.Version, Apt("policy", "survey6-probe", tool: "apt-cache").Check().Stdout, StringComparison.Ordinal);
            Apt("install", "survey6-probe").Check();
            Assert.Equal(PackagesFixture.Version, InstalledVersion());
            Assert.Equal(PackagesFixture.Version, Tool.Run("/usr/lib/survey6-probe/survey6", "--version").Check().Stdout.Trim());

            // A Release changed after signing is refused.
            var inRelease = Path.Combine(data, "apt", "dists", "survey6", "InRelease");
            var signed = File.ReadAllText(inRelease);
            File.WriteAllText(inRelease, signed.Replace("Label: survey6", "Label: survey7", StringComparison.Ordinal));
            // A host that has the good index keeps it (apt warns and does not update) ...
            var tampered = Apt("update");
            Assert.True(tampered.Output.Contains("BADSIG", StringComparison.Ordinal) && tampered.Output.Contains("The repository is not updated", StringComparison.Ordinal),
                $"a tampered InRelease was accepted ({tampered.ExitCode}):\n{tampered.Output}");
            // ... and a host without one gets an error and no index at all.
            var fresh = Apt("update", lists: "lists-fresh");
            Assert.True(fresh.ExitCode != 0 && fresh.Output.Contains("BADSIG", StringComparison.Ordinal),
                $"a tampered InRelease was accepted on a fresh host ({fresh.ExitCode}):\n{fresh.Output}");
            File.WriteAllText(inRelease, signed);

            // A newer probe on the server reaches the host through apt.
            Tool.Run(survey6, "server", "repo", "add", packages.NewerProbe, "--data-dir", data).Check();
            AssertClean(Apt("update").Check());
            Apt("install", "survey6-probe").Check();
            Assert.Equal(PackagesFixture.NewerVersion, InstalledVersion());
            Assert.Equal(PackagesFixture.NewerVersion, Tool.Run("/usr/lib/survey6-probe/survey6", "--version").Check().Stdout.Trim());

            await AssertHttpSurface(survey6, data, httpUrl);
        }
        finally
        {
            Installed.PurgeAll();
        }
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private async Task AssertHttpSurface(string survey6, string data, Uri http)
    {
        var token = Tool.Run(survey6, "server", "api-token", "create", "--data-dir", data, "--name", "deploy-test").Check()
            .Stdout.Split('\n').Single(l => l.StartsWith("token: ", StringComparison.Ordinal))["token: ".Length..].Trim();
        using var handler = new HttpClientHandler { AllowAutoRedirect = false };
        using var client = new HttpClient(handler) { BaseAddress = http };
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("/api/v1/repo", UriKind.Relative))).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/repo");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(PackagesFixture.NewerVersion, json.RootElement.GetProperty("newest_probe_version").GetString());
        Assert.Equal(
            [PackagesFixture.Version, PackagesFixture.NewerVersion],
            json.RootElement.GetProperty("packages").EnumerateArray().Select(p => p.GetProperty("version").GetString()).Order(StringComparer.Ordinal));

        // Read-only, public files: no token needed, no writes, nothing outside apt/.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/apt/survey6-archive-keyring.asc", UriKind.Relative))).StatusCode);
        using var put = new StringContent("x");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await client.PutAsync(new Uri("/apt/dists/survey6/InRelease", UriKind.Relative), put)).StatusCode);
        foreach (var escape in new[] { "/apt/%2e%2e/state.db", "/apt/..%2fstate.db", "/apt/%2e%2e/apt-signing/fingerprint" })
        {
            using var outside = await client.GetAsync(new Uri(escape, UriKind.Relative));
            var body = await outside.Content.ReadAsStringAsync();
            Assert.False(outside.IsSuccessStatusCode && (body.StartsWith("SQLite format 3", StringComparison.Ordinal) || body.Trim().Length == 40), $"{escape} served a file outside apt/");
        }

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri("/apt/dists/", UriKind.Relative))).StatusCode);
    }

    private ToolResult Apt(string command, string package = "", string tool = "apt-get", string lists = "lists")
    {
        string[] options =
        [
            "-o", "Dir::Etc::SourceList=" + Path.Combine(_work, "sources.list"),
            "-o", "Dir::Etc::SourceParts=" + Path.Combine(_work, "sources.list.d"),
            "-o", "Dir::State::Lists=" + Path.Combine(_work, lists),
            "-o", "Dir::Cache=" + Path.Combine(_work, "cache"),
        ];
        string[] arguments = [.. options, command, .. package.Length > 0 ? new[] { package } : []];
        return tool == "apt-get" ? Tool.AptGet(arguments) : Tool.Run(tool, arguments);
    }

    private static void AssertClean(ToolResult update)
    {
        foreach (var bad in new[] { "NO_PUBKEY", "unsigned", "not signed", "GPG error", "W:", "E:" })
            Assert.False(update.Output.Contains(bad, StringComparison.Ordinal), $"apt-get update said '{bad}':\n{update.Output}");
    }

    private static string InstalledVersion() => Tool.Run("dpkg-query", "-W", "-f=${Version}", "survey6-probe").Check().Stdout.Trim();

    // gpg's agent must not outlive `repo add`.
    private static void AssertNoAgentLeft(string data)
    {
        var home = Path.Combine(data, "apt-signing");
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue;
            }

            Assert.False(cmdline.Contains("gpg-agent", StringComparison.Ordinal) && cmdline.Contains(home, StringComparison.Ordinal), "gpg-agent left running: " + cmdline);
        }
    }

    private static string MakeWorkDirectory()
    {
        var dir = Directory.CreateTempSubdirectory("survey6-apt-").FullName;
        // apt downloads as the unprivileged _apt user: it must reach the lists, the cache and the key.
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        foreach (var sub in new[] { "sources.list.d", "lists/partial", "lists-fresh/partial", "cache/archives/partial" })
            Directory.CreateDirectory(Path.Combine(dir, sub));
        return dir;
    }
}

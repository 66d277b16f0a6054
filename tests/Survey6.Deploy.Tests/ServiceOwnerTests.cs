using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Survey6.Deploy.Tests.Support;
using Survey6.Testing;

namespace Survey6.Deploy.Tests;

/// <summary>
/// Root running survey6 on a directory that a service user owns, as <c>sudo survey6 ...</c> or a printed join command
/// run as root does: every file the command leaves there belongs to that user, or the command refuses and names the
/// one to run instead. The packaged programs, with a throwaway system user in the role of <c>survey6</c>.
/// </summary>
[Collection(PackagesCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Packages)]
public sealed partial class ServiceOwnerTests(PackagesFixture packages) : IDisposable
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnlyFile | UnixFileMode.UserExecute;

    private readonly string _work = WorkDirectory();
    private readonly ThrowawayUser _user = new();

    [Fact]
    public async Task Server_commands_run_by_root_leave_only_files_the_data_directory_owner_owns()
    {
        var survey6 = Extract(packages.Server, "survey6-server");
        var data = _user.Directory(Path.Combine(_work, "data"), "0700");

        var token = Tool.Run(survey6, "server", "token", "create", "--data-dir", data, "--ttl", "1h").Check();
        Assert.Contains($"survey6: running as {_user.Name}, the owner of {data}", token.Stderr, StringComparison.Ordinal);
        Assert.Contains("survey6 probe join --server ", token.Stdout, StringComparison.Ordinal);
        Tool.Run(survey6, "server", "api-token", "create", "--data-dir", data, "--name", "ops").Check();
        Tool.Run("sh", "-c", $"echo 'a long password 123' | {survey6} server admin set-password --data-dir {data}").Check();
        // The package lies in a directory only root can read: read as root, written as the repository's owner.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(packages.Probe)!));
        Tool.Run(survey6, "server", "repo", "add", packages.Probe, "--data-dir", data).Check();
        Assert.StartsWith("-----BEGIN PGP PUBLIC KEY BLOCK-----", Tool.Run(survey6, "server", "repo", "key", "--data-dir", data).Check().Stdout, StringComparison.Ordinal);
        foreach (var read in new[] { new[] { "token", "list" }, ["probes"], ["uploads"], ["api-token", "list"], ["repo", "list"] })
            Tool.Run(survey6, ["server", .. read, "--data-dir", data]).Check();
        Tool.Run(survey6, "aggregate", "once", "--data-dir", data).Check();

        Assert.Empty(_user.NotOwned(data));
        Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(Path.Combine(data, "pki")));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(Path.Combine(data, "pki", "ca-key.pem")));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(Path.Combine(data, "pki", "server-key.pem")));
        Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(Path.Combine(data, "apt-signing")));

        // The server itself: it runs as the owner with no capability, and its web keys are the owner's, 0600 in a 0700 directory.
        using (var server = BackgroundProcess.Start(survey6, "server", "run", "--data-dir", data, "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"))
        {
            var http = new Uri(await server.LineAsync("http: ", TimeSpan.FromSeconds(120)));
            var status = ProcessStatus.Of(server.Id);
            Assert.True(status.RunsAs(_user.Uid), $"server run: Uid {status.Uid}, expected {_user.Uid}");
            Assert.Equal(ProcessStatus.NoCapabilities, status.CapEff);
            using var client = new HttpClient { BaseAddress = http };
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("/login", UriKind.Relative))).StatusCode); // makes a Data Protection key
            var keys = Path.Combine(data, "data-protection");
            Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(keys));
            var files = Directory.GetFiles(keys);
            Assert.NotEmpty(files);
            Assert.All(files, f => Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(f)));
        }

        Assert.Empty(_user.NotOwned(data));
    }

    [Fact]
    public async Task Probe_commands_run_by_root_write_the_identity_for_the_state_directory_owner_and_the_daemon_names_the_command_that_works()
    {
        var server6 = Extract(packages.Server, "survey6-server");
        var probe6 = Extract(packages.Probe, "survey6-probe");
        var data = Path.Combine(_work, "server-data"); // root's: the server is not what this test is about
        using var server = BackgroundProcess.Start(server6, "server", "run", "--data-dir", data, "--grpc-listen", "127.0.0.1:0", "--http-listen", "", "--no-aggregator");
        await server.LineAsync("ca-hash: ", TimeSpan.FromSeconds(120));
        var printed = Tool.Run(server6, "server", "token", "create", "--data-dir", data, "--ttl", "1h").Check().Stdout;
        var join = printed.Split('\n').Single(l => l.StartsWith("survey6 probe join ", StringComparison.Ordinal)).Trim();

        // The printed command exactly, run by root with the probe package's program, for a state directory the service user owns.
        var state = _user.Directory(Path.Combine(_work, "probe"), "0750");
        var joined = Tool.Run(probe6, [.. join.Split(' ')[1..], "--state-dir", state]).Check();
        Assert.Contains("joined as p-", joined.Stdout, StringComparison.Ordinal);
        Assert.Empty(_user.NotOwned(state));
        Assert.Equal(OwnerOnlyFile, File.GetUnixFileMode(Path.Combine(state, "key.pem")));
        foreach (var file in new[] { "probe.json", "cert.pem", "ca.pem" })
            Assert.True(File.Exists(Path.Combine(state, file)), file + " missing");

        Tool.Run(probe6, "probe", "suspend", "--state-dir", state, "--reason", "maintenance").Check();
        Assert.True(File.Exists(Path.Combine(state, "suspended")));
        Assert.Empty(_user.NotOwned(state));
        Tool.Run(probe6, "probe", "resume", "--state-dir", state).Check();

        // The daemon cannot become the owner and keep its capture capabilities in-process: it refuses, naming the command.
        var refused = Tool.Run(probe6, "probe", "run", "--state-dir", state);
        Assert.Equal(1, refused.ExitCode);
        Assert.Empty(_user.NotOwned(state));
        var command = SetprivCommand().Match(refused.Stderr);
        Assert.True(command.Success, "no setpriv command in:\n" + refused.Output);
        Assert.StartsWith($"setpriv --reuid={_user.Name} --regid={_user.Name} --init-groups ", command.Groups[1].Value, StringComparison.Ordinal);

        // That command works: run as printed, in a network namespace of its own (nothing to capture but its own loopback).
        var netns = "s6o-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Tool.Run("ip", "netns", "add", netns).Check();
        try
        {
            using var daemon = BackgroundProcess.Start("ip", "netns", "exec", netns, "sh", "-c", "exec " + command.Groups[1].Value);
            var pid = await DaemonPidAsync(state, daemon);
            var status = ProcessStatus.Of(pid);
            Assert.True(status.RunsAs(_user.Uid), $"probe run: Uid {status.Uid}, expected {_user.Uid}");
            Assert.Equal(ProcessStatus.CaptureCapabilities, status.CapEff);
            Assert.Equal(ProcessStatus.CaptureCapabilities, status.CapAmb);
            await WaitAsync(
                () => Tool.Run(probe6, "probe", "status", "--state-dir", state).Stdout.Contains("state:      capturing", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), () => "the daemon did not start capturing:\n" + daemon.Output);
            Tool.Run("kill", "-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)).Check();
            await WaitAsync(() => !Directory.Exists($"/proc/{pid}"), TimeSpan.FromSeconds(60), () => "the daemon did not stop on SIGTERM:\n" + daemon.Output);
        }
        finally
        {
            Tool.Run("ip", "netns", "del", netns);
        }

        Assert.Empty(_user.NotOwned(state));
    }

    public void Dispose()
    {
        Directory.Delete(_work, recursive: true);
        _user.Dispose();
    }

    /// <summary>The program of a package, extracted into the work directory.</summary>
    private string Extract(string deb, string package)
    {
        var root = Path.Combine(_work, package);
        if (!Directory.Exists(root))
            Tool.Run("dpkg-deb", "-x", deb, root).Check();
        return Path.Combine(root, "usr", "lib", package, "survey6");
    }

    /// <summary>The daemon's pid, once it answers on its control socket.</summary>
    private static async Task<int> DaemonPidAsync(string state, BackgroundProcess launcher)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "the daemon did not start:\n" + launcher.Output);
            Assert.False(launcher.HasExited, "the daemon exited:\n" + launcher.Output);
            if (File.Exists(Path.Combine(state, "probe.sock")))
            {
                foreach (var dir in Directory.EnumerateDirectories("/proc"))
                {
                    if (!int.TryParse(Path.GetFileName(dir), out var pid))
                        continue;
                    string cmdline;
                    try
                    {
                        cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                    }
                    catch (IOException)
                    {
                        continue;
                    }

                    if (cmdline.Contains("probe\0run\0", StringComparison.Ordinal) && cmdline.Contains(state + "\0", StringComparison.Ordinal)
                        && !cmdline.StartsWith("setpriv", StringComparison.Ordinal) && !cmdline.StartsWith("sh\0", StringComparison.Ordinal))
                        return pid;
                }
            }

            await Task.Delay(200);
        }
    }

    private static async Task WaitAsync(Func<bool> condition, TimeSpan timeout, Func<string> message)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, message());
            await Task.Delay(100);
        }
    }

    private static string WorkDirectory()
    {
        var dir = Directory.CreateTempSubdirectory("survey6-owner-").FullName;
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101); // the service user must reach its directories and the programs
        return dir;
    }

    [GeneratedRegex("capture capabilities: `([^`]+)`")]
    private static partial Regex SetprivCommand();
}

using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Xunit.Abstractions;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// The whole path: a real server (TLS, real clock), a real join, <c>survey6 probe run</c> as its own process
/// capturing on a veth whose peer sits in a namespace of this test, heartbeats, uploads, a server command.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class ProbeUplinkEndToEndTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_joined_probe_reports_healthy_uploads_its_rotated_files_and_obeys_a_suspend()
    {
        var clock = Stopwatch.StartNew();
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root", "needs root: it creates a network namespace and captures");
        await using var server = await ServerHarness.StartAsync(
            new Dictionary<string, string?> { ["Server:InitialPolicy:HeartbeatInterval"] = "00:00:01" },
            // Heartbeats carry the probe's wall clock: the server must use the real one, or it sees skew.
            services => services.AddSingleton(TimeProvider.System));
        var root = Path.Combine(server.Root, "probe");
        var state = Path.Combine(root, "state");
        var join = await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, state, new Dictionary<string, string>(), null)
        {
            Timeout = TimeSpan.FromSeconds(20),
        });
        var probeId = join.ProbeId;
        using var lab = new Lab();
        var config = WriteConfig(root, lab.HostInterface);

        using var daemon = Daemon.Start(config, state);
        try
        {
            await WaitUntilAsync(() => daemon.TryStatus() is { State: ProbeStatus.Capturing }, TimeSpan.FromSeconds(20), "the daemon capturing", daemon);
            lab.Ping(lab.HostAddress, 5);

            var health = server.Get<ProbeHealthQuery>();
            await WaitUntilAsync(async () => (await health.GetAsync(probeId)) is { State: ProbeStates.Healthy, LastHeartbeat.Capture.Received: >= 10 }, TimeSpan.FromSeconds(15), "a healthy probe reporting the echoes", daemon);
            var reported = (await health.GetAsync(probeId))!;
            Assert.Equal(ReportedStates.Capturing, reported.ReportedState);
            Assert.True(reported.LastHeartbeat!.RssBytes > 0);
            Assert.False(string.IsNullOrEmpty(reported.SoftwareVersion));

            // Files rotate every 2 s; each one that leaves the spool must already be on the server. Steady echoes keep
            // files coming, so one uploaded between two looks at the spool does not leave the test with nothing to see.
            using var echoes = lab.PingInBackground(lab.HostAddress);
            var spool = Path.Combine(state, "spool");
            var captures = Path.Combine(server.DataDirectory, "captures", probeId);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var uploaded = new HashSet<string>(StringComparer.Ordinal);
            await WaitUntilAsync(
                () =>
                {
                    var inSpool = Directory.GetFiles(spool, "*.pcapng").Select(Path.GetFileName).OfType<string>().ToHashSet(StringComparer.Ordinal);
                    var onServer = Directory.Exists(captures)
                        ? Directory.GetFiles(captures, "*.pcapng", SearchOption.AllDirectories).ToDictionary(p => Path.GetFileNameWithoutExtension(p), StringComparer.Ordinal)
                        : [];
                    foreach (var manifest in Directory.GetFiles(spool, "*.manifest.json"))
                    {
                        try
                        {
                            var json = JsonNode.Parse(File.ReadAllText(manifest))!;
                            seen.Add(json["file"]!.GetValue<string>() + " " + json["sha256"]!.GetValue<string>());
                        }
                        catch (IOException)
                        {
                            // Completed between the listing and the read.
                        }
                    }

                    foreach (var entry in seen)
                    {
                        var (name, sha) = (entry.Split(' ')[0], entry.Split(' ')[1]);
                        if (inSpool.Contains(name))
                            continue;
                        Assert.True(onServer.TryGetValue(sha, out var copy), $"{name} left the spool but the server holds no {sha}");
                        Assert.Equal(sha, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(copy))));
                        uploaded.Add(sha);
                    }

                    return uploaded.Count > 0;
                },
                TimeSpan.FromSeconds(20),
                "an uploaded capture",
                daemon);
            Assert.True(daemon.TryStatus()!.Upload!.FilesUploaded >= 1);

            var commands = server.Get<ProbeCommands>();
            var suspend = commands.Suspend(probeId, "test");
            await WaitUntilAsync(() => daemon.TryStatus() is { State: ProbeStatus.Suspended }, TimeSpan.FromSeconds(5), "the probe suspended", daemon);
            await WaitUntilAsync(() => commands.Get(suspend.Id) is { Ok: true }, TimeSpan.FromSeconds(5), "the suspend's result", daemon);
            await WaitUntilAsync(async () => (await health.GetAsync(probeId)) is { ReportedState: ReportedStates.Suspended }, TimeSpan.FromSeconds(5), "a suspended heartbeat", daemon);
            output.WriteLine($"{uploaded.Count} captures uploaded; done in {clock.Elapsed.TotalSeconds:0.0} s");
            daemon.Terminate();
        }
        finally
        {
            output.WriteLine(daemon.Log);
        }
    }

    internal static string WriteConfig(string directory, string captureInterface, JsonObject? extra = null)
    {
        var root = new JsonObject
        {
            ["Probe"] = new JsonObject
            {
                ["Capture"] = new JsonObject { ["Interfaces"] = new JsonArray(captureInterface) },
                ["Spool"] = new JsonObject { ["RotateAge"] = "00:00:02", ["MinFreeDiskBytes"] = 1 << 20 },
                ["Upload"] = new JsonObject { ["IdleBytesPerSecond"] = 1_000_000, ["QuietPeriod"] = "00:00:01", ["RetryDelay"] = "00:00:01" },
            },
        };
        foreach (var (section, value) in extra ?? [])
            root["Probe"]![section] = value?.DeepClone();
        Directory.CreateDirectory(directory);
        var file = Path.Combine(directory, "probe-config.json");
        File.WriteAllText(file, root.ToJsonString());
        return file;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; the deadline is never under <see cref="ProbeStream.Wait"/>, for a busy machine.</summary>
    internal static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what, Daemon daemon) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, what, daemon);

    /// <summary>As above, for a condition that awaits (a health query, say).</summary>
    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Daemon daemon)
    {
        timeout = timeout < ProbeStream.Wait ? ProbeStream.Wait : timeout;
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > timeout)
                Assert.Fail($"timed out waiting for {what}; daemon log:\n{daemon.Log}");
            await Task.Delay(100);
        }
    }

    /// <summary>A namespace joined to the host by a veth pair, addresses from a random /64 of 2001:db8::/32; removed on dispose.</summary>
    internal sealed class Lab : IDisposable
    {
        private readonly string _namespace;

        public Lab()
        {
            var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            _namespace = "s6u-" + id;
            HostInterface = "s6uh" + id;
            var peer = "s6un" + id;
            var prefix = $"2001:db8:{id[..4]}:{id[4..]}";
            HostAddress = prefix + "::1";
            try
            {
                Run("ip", "netns", "add", _namespace);
                Run("ip", "link", "add", HostInterface, "type", "veth", "peer", "name", peer, "netns", _namespace);
                Run("ip", "addr", "add", HostAddress + "/64", "dev", HostInterface, "nodad");
                Run("ip", "link", "set", HostInterface, "up");
                Run("ip", "netns", "exec", _namespace, "ip", "link", "set", "lo", "up");
                Run("ip", "netns", "exec", _namespace, "ip", "addr", "add", prefix + "::2/64", "dev", peer, "nodad");
                Run("ip", "netns", "exec", _namespace, "ip", "link", "set", peer, "up");
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public string HostInterface { get; }

        public string HostAddress { get; }

        public void Ping(string target, int count) =>
            Assert.Contains($"{count} received", Run("ip", "netns", "exec", _namespace, "ping", "-6", "-n", "-q", "-c", count.ToString(CultureInfo.InvariantCulture), "-i", "0.05", "-W", "2", target), StringComparison.Ordinal);

        /// <summary><paramref name="count"/> echoes (sequence 1..count) every <paramref name="interval"/> seconds; <see cref="BackgroundProcess.WaitForExit"/> for the end.</summary>
        public BackgroundProcess PingInBackground(string target, int count, double interval)
        {
            var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "netns", "exec", _namespace, "ping", "-6", "-n", "-q", "-c", count.ToString(CultureInfo.InvariantCulture), "-i", interval.ToString(CultureInfo.InvariantCulture), target })
                start.ArgumentList.Add(a);
            return new BackgroundProcess(Process.Start(start)!);
        }

        /// <summary>Five echoes a second for at most 60 s; kill it (dispose) when done.</summary>
        public BackgroundProcess PingInBackground(string target)
        {
            var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "netns", "exec", _namespace, "ping", "-6", "-n", "-q", "-i", "0.2", "-w", "60", target })
                start.ArgumentList.Add(a);
            return new BackgroundProcess(Process.Start(start)!);
        }

        public void Dispose()
        {
            // Deleting the host end removes its peer; the namespace goes last.
            Run("ip", ["link", "del", HostInterface], check: false);
            Run("ip", ["netns", "del", _namespace], check: false);
        }

        private static string Run(string tool, params string[] arguments) => Run(tool, arguments, check: true);

        private static string Run(string tool, string[] arguments, bool check)
        {
            var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in arguments)
                start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (check && process.ExitCode != 0)
                throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)} exited {process.ExitCode}: {stderr}");
            return stdout.Result;
        }
    }

    internal sealed class BackgroundProcess(Process process) : IDisposable
    {
        /// <summary>Waits for the end; returns what it printed.</summary>
        public string WaitForExit(TimeSpan timeout)
        {
            Assert.True(process.WaitForExit(timeout), "the background process did not end");
            return process.StandardOutput.ReadToEnd();
        }

        public void Dispose()
        {
            if (!process.HasExited)
                process.Kill();
            process.WaitForExit();
            process.Dispose();
        }
    }

    /// <summary><c>survey6 probe run</c> as a process of its own, stopped with SIGTERM like a service.</summary>
    internal sealed class Daemon : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();

        private Daemon(Process process, string state)
        {
            _process = process;
            State = state;
        }

        public string State { get; }

        public string Log
        {
            get
            {
                lock (_log)
                    return _log.ToString();
            }
        }

        public static Daemon Start(string config, string state)
        {
            var dotnet = Tool.Dotnet();
            var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "survey6.dll"), "probe", "run", "--config", config, "--state-dir", state })
                start.ArgumentList.Add(a);
            var daemon = new Daemon(Process.Start(start)!, state);
            daemon._process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
            daemon._process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
            daemon._process.BeginOutputReadLine();
            daemon._process.BeginErrorReadLine();
            return daemon;
        }

        public ProbeStatus? TryStatus()
        {
            try
            {
                return ProbeDaemonClient.SendAsync(Path.Combine(State, "probe.sock"), "status", null, TimeSpan.FromSeconds(5), CancellationToken.None)
                    .GetAwaiter().GetResult()?.Status;
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                return null;
            }
        }

        public void Terminate()
        {
            if (_process.HasExited)
                return;
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
                kill.WaitForExit();
            Assert.True(_process.WaitForExit(TimeSpan.FromSeconds(30)), "the daemon did not stop on SIGTERM");
            _process.WaitForExit();
            Assert.Equal(0, _process.ExitCode);
        }

        public void Dispose()
        {
            if (!_process.HasExited)
                _process.Kill();
            _process.WaitForExit();
            _process.Dispose();
        }

        private void Append(string? line)
        {
            if (line is null)
                return;
            lock (_log)
                _log.AppendLine(line);
        }
    }
}

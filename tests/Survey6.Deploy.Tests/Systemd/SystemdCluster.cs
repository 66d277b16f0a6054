using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Survey6.Deploy.Tests.Systemd;

/// <summary>
/// The systemd tier's deployment, set up once for its tests the way a person follows docs/operations.md: a C&amp;C
/// container gets survey6-server from its .deb and serves the probe package from its own signed apt repository; a
/// probe container adds that repository, installs survey6-probe with apt-get, runs the join command exactly as
/// <c>server token create</c> printed it, as root, and <c>systemctl enable --now survey6-probe</c>. Both are Debian 12
/// with systemd as PID 1, joined by a veth pair carrying IPv6.
/// </summary>
public sealed class SystemdCluster : IDisposable
{
    public const string ServerData = "/var/lib/survey6/server";
    public const string ProbeState = "/var/lib/survey6/probe";
    public const int GrpcPort = 7443;
    public const int HttpPort = 7080;

    /// <summary>Spool files close at this age, so that captures reach the lake within the tier's time.</summary>
    public static readonly TimeSpan RotateAge = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _setUp = new(1, 1);
    private readonly Stopwatch _clock = new();
    private Lab? _lab;
    private Exception? _failure;
    private bool _ready;

    internal Container Server { get; private set; } = null!;

    internal Container Probe { get; private set; } = null!;

    internal ContainerLink Link { get; private set; } = null!;

    public string ProbeId { get; private set; } = "";

    /// <summary>Sets the deployment up on first use; a failed set-up fails every later test the same way.</summary>
    public async Task EnsureAsync(PackagesFixture packages, ITestOutputHelper log)
    {
        await _setUp.WaitAsync();
        try
        {
            if (_failure is not null)
                throw new InvalidOperationException("the systemd tier's set-up failed in an earlier test", _failure);
            if (_ready)
                return;
            try
            {
                _clock.Start();
                await SetUpAsync(packages, log);
                _ready = true;
            }
            catch (Exception e)
            {
                _failure = e;
                throw;
            }
        }
        finally
        {
            _setUp.Release();
        }
    }

    /// <summary>A survey6 command on the C&amp;C host as root, as an operator types it (`sudo survey6 server ...`).</summary>
    internal ToolResult Survey6OnServer(params string[] arguments) => Server.Exec(TimeSpan.FromMinutes(3), ["survey6", .. arguments]);

    /// <summary>The probe daemon's status (<c>survey6 probe status --json</c>), or null while none answers.</summary>
    internal JsonNode? ProbeStatus()
    {
        var status = Probe.Exec("survey6", "probe", "status", "--json");
        return status.ExitCode == 0 ? JsonNode.Parse(status.Stdout) : null;
    }

    /// <summary>This probe's row of <c>survey6 server probes --json</c>.</summary>
    internal JsonNode ProbeOnServer()
    {
        var probes = JsonNode.Parse(Survey6OnServer("server", "probes", "--json").Check().Stdout)!.AsArray();
        return probes.Single(p => p!["id"]!.GetValue<string>() == ProbeId)!;
    }

    /// <summary>Rows of <c>survey6 query SQL --format csv</c> on the C&amp;C; null while the lake cannot answer it yet (no files).</summary>
    internal IReadOnlyList<string[]>? Query(string sql)
    {
        var result = Survey6OnServer("query", sql, "--format", "csv", "--data-dir", ServerData);
        if (result.ExitCode != 0)
            return null;
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(',')).ToList();
    }

    /// <summary>Waits until <paramref name="ready"/> holds, polling every half second; the message says what was seen last.</summary>
    internal static async Task WaitAsync(string what, TimeSpan timeout, Func<bool> ready, Func<string> seen)
    {
        var deadline = Stopwatch.StartNew();
        while (!ready())
        {
            // What was seen is described only when the wait has failed: it may take a query or two.
            if (deadline.Elapsed >= timeout)
                Assert.Fail($"{what}: not within {timeout}; last seen: {seen()}");
            await Task.Delay(500);
        }
    }

    /// <summary>Waits until the probe daemon answers and captures.</summary>
    internal Task WaitCapturingAsync(string after) => WaitAsync(
        $"the probe capturing after {after}", TimeSpan.FromMinutes(3),
        () => ProbeStatus()?["state"]?.GetValue<string>() == "capturing",
        () => Probe.Exec("systemctl", "status", "--no-pager", "survey6-probe").Output);

    /// <summary>
    /// Both services started (a no-op when they run), the probe capturing and healthy on the server: what every test
    /// starts from, whatever an earlier one left.
    /// </summary>
    internal async Task EnsureRunningAsync()
    {
        Server.Exec("systemctl", "start", "survey6-server").Check();
        Probe.Exec("systemctl", "start", "survey6-probe").Check();
        await WaitServerAsync("systemctl start");
        await WaitCapturingAsync("systemctl start");
        await WaitHealthyAsync();
    }

    internal Task WaitHealthyAsync() => WaitAsync("the probe healthy on the server", TimeSpan.FromMinutes(3),
        () => ProbeOnServer()["state"]?.GetValue<string>() == "healthy", () => ProbeOnServer().ToJsonString());

    /// <summary>Waits until the C&amp;C answers on its HTTP endpoint from the probe's side of the link.</summary>
    internal Task WaitServerAsync(string after) => WaitAsync(
        $"the server answering after {after}", TimeSpan.FromMinutes(3),
        () => Probe.Exec("curl", "-fsS", "--max-time", "5", $"http://[{Link.ServerAddress}]:{HttpPort}/healthz").ExitCode == 0,
        () => Server.Exec("systemctl", "status", "--no-pager", "survey6-server").Output);

    public void Dispose()
    {
        // Containers first (a clean poweroff), then whatever the lab recorded (namespaces, mounts, a container that hung).
        foreach (var container in new[] { Probe, Server })
            container?.Dispose();
        _lab?.Dispose();
        _setUp.Dispose();
    }

    private async Task SetUpAsync(PackagesFixture packages, ITestOutputHelper log)
    {
        void Step(string what) => log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,6:0.0} s] {what}"));

        Lab.SweepAbandoned();
        Step("rootfs");
        var rootfs = DebianRootfs.Get(packages.Repository);
        Step("rootfs ready; network and containers");
        _lab = new Lab();
        Link = new ContainerLink(_lab);
        Server = new Container(_lab, rootfs, "s6srv-" + _lab.Id, Link.ServerNamespace, packages.Directory + ":/srv/survey6-packages");
        Probe = new Container(_lab, rootfs, "s6prb-" + _lab.Id, Link.ProbeNamespace);
        await Task.WhenAll(Server.BootAsync(), Probe.BootAsync());
        Step("booted");

        // The C&C host: the package, then its configuration (names and addresses the probes use), then a restart.
        var deb = "/srv/survey6-packages/" + Path.GetFileName(packages.Server);
        Server.Exec(TimeSpan.FromMinutes(10), "apt-get", "install", "-y", "--no-install-recommends", deb).Check();
        Step("survey6-server installed");
        var configuration = new JsonObject
        {
            ["Server"] = new JsonObject
            {
                ["DataDirectory"] = ServerData,
                ["GrpcListen"] = $"[{Link.ServerAddress}]:{GrpcPort}",
                ["HttpListen"] = $"[{Link.ServerAddress}]:{HttpPort}",
                ["TlsNames"] = new JsonArray(Link.ServerAddress),
            },
            // Parse every 5 s instead of every minute, so that uploads reach the lake within the tier's time.
            ["Aggregator"] = new JsonObject { ["Schedules"] = new JsonObject { ["Parse"] = "0/5 * * * * ?" } },
        };
        File.WriteAllText(Path.Combine(Server.Root, "etc/survey6/server.json"), configuration.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Server.Exec("systemctl", "restart", "survey6-server").Check();
        await WaitServerAsync("its configuration");
        Step("survey6-server running");

        // Operator commands as root (the owner switch keeps the data directory the service's).
        Survey6OnServer("server", "repo", "add", "/srv/survey6-packages/" + Path.GetFileName(packages.Probe)).Check();
        var source = Survey6OnServer("server", "repo", "source", "--url", $"http://[{Link.ServerAddress}]:{HttpPort}").Check().Stdout.Trim();
        var token = Survey6OnServer("server", "token", "create", "--ttl", "1h", "--label", "site=systemd-tier").Check().Stdout;
        var join = token.Split('\n').Single(l => l.StartsWith("survey6 probe join ", StringComparison.Ordinal)).Trim();
        Step("repository and token ready");

        // The probe host, as docs/operations.md says: the key, the source line, apt-get; the printed join, as root.
        Probe.Shell($"install -d /etc/apt/keyrings && curl -fsS http://[{Link.ServerAddress}]:{HttpPort}/apt/survey6-archive-keyring.asc -o /etc/apt/keyrings/survey6.asc").Check();
        File.WriteAllText(Path.Combine(Probe.Root, "etc/apt/sources.list.d/survey6.list"), source + "\n");
        var update = Probe.Exec(TimeSpan.FromMinutes(5), "apt-get", "update").Check();
        Assert.DoesNotContain("W:", update.Output, StringComparison.Ordinal);
        Probe.Exec(TimeSpan.FromMinutes(10), "apt-get", "install", "-y", "--no-install-recommends", "survey6-probe").Check();
        Step("survey6-probe installed from the C&C's repository");
        var joined = Probe.Shell(join).Check();
        ProbeId = joined.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "as").Skip(1).First().TrimEnd(';');
        Assert.StartsWith("p-", ProbeId, StringComparison.Ordinal);

        // sudoedit /etc/survey6/probe.json: files close every 10 s rather than every 5 minutes.
        var probeConfig = Path.Combine(Probe.Root, "etc/survey6/probe.json");
        var probe = JsonNode.Parse(File.ReadAllText(probeConfig))!;
        probe["Probe"]!["Spool"] = new JsonObject { ["RotateAge"] = RotateAge.ToString("c", CultureInfo.InvariantCulture) };
        File.WriteAllText(probeConfig, probe.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Probe.Exec("systemctl", "enable", "--now", "survey6-probe").Check();
        await WaitCapturingAsync("enable --now");
        await WaitHealthyAsync();
        Step("probe joined, running and healthy");
    }
}

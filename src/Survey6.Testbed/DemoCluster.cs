using System.Globalization;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Survey6.Probe.Daemon;

namespace Survey6.Testbed;

/// <summary>Knobs of a <see cref="DemoCluster"/>: the demo's defaults are relaxed, the end-to-end tests' quick.</summary>
public sealed class DemoClusterOptions
{
    public int Probes { get; init; } = 3;

    /// <summary>Holds <c>server/</c> (the C&amp;C's data directory, which the aggregator reads too) and <c>probes/N/</c>.</summary>
    public required string Directory { get; init; }

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan RotateAge { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Quartz cron expressions (with seconds) of the aggregator's stages.</summary>
    public string ParseSchedule { get; init; } = "0/15 * * * * ?";

    public string AggregateSchedule { get; init; } = "10 * * * * ?";

    public string CleanupSchedule { get; init; } = "5/30 * * * * ?";

    /// <summary>More server settings (configuration keys, <c>Server:Health:MaxClockSkew</c>).</summary>
    public IReadOnlyDictionary<string, string> ServerSettings { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// True (the default): probes also get settings that make a lab quick (immediate delivery, statistics and retries every
    /// second, uploads without waiting for an idle link, a small free-disk reserve). False: the product's defaults apart
    /// from the capture interface and <see cref="RotateAge"/>, as a probe installed by hand runs.
    /// </summary>
    public bool QuickProbes { get; init; } = true;

    /// <summary>More probe settings per probe (configuration paths such as <c>Probe:Spool:Directory</c>).</summary>
    public Func<DemoProbe, (string Path, JsonNode Value)[]>? ProbeSettings { get; init; }

    /// <summary>Every line any component prints, prefixed with its name; null to keep it quiet.</summary>
    public Action<string>? Echo { get; init; }
}

/// <summary>A probe of the cluster: its host, where it keeps its state, and its running daemon (null while stopped).</summary>
public sealed class DemoProbe(DemoHost host, string directory)
{
    public DemoHost Host { get; } = host;

    public string Directory { get; } = directory;

    public string StateDirectory => Path.Combine(Directory, "state");

    public string ConfigFile => Path.Combine(Directory, "probe-config.json");

    public string ProbeId { get; internal set; } = "";

    public ChildProcess? Daemon { get; internal set; }

    /// <summary>The daemon's status through its control socket, or null while it does not answer.</summary>
    public async Task<ProbeStatus?> TryStatusAsync()
    {
        try
        {
            return (await ProbeDaemonClient.SendAsync(Path.Combine(StateDirectory, "probe.sock"), "status", null, TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false))?.Status;
        }
        catch (Exception e) when (e is IOException or SocketException or TimeoutException or OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>Asks the daemon to close its open file now (so it can be uploaded).</summary>
    public async Task<bool> RotateAsync()
    {
        try
        {
            return (await ProbeDaemonClient.SendAsync(Path.Combine(StateDirectory, "probe.sock"), "rotate", null, TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false))?.Ok == true;
        }
        catch (Exception e) when (e is IOException or SocketException or TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }
}

/// <summary>
/// The whole system on one machine: the C&amp;C (<c>survey6 server run</c>, which embeds the aggregator over its
/// data directory), and one probe per namespace of a
/// <see cref="DemoNetwork"/>, joined through the real token-and-certificate path and capturing inside its namespace.
/// Every process is a child of this one and is stopped by its PID.
/// </summary>
public sealed class DemoCluster : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly DemoClusterOptions _options;
    private readonly List<DemoProbe> _probes = [];
    private Task _joining = Task.CompletedTask;

    private DemoCluster(DemoClusterOptions options, DemoNetwork network)
    {
        _options = options;
        Network = network;
    }

    public DemoNetwork Network { get; }

    public DemoResponders? Responders { get; private set; }

    public string ServerDirectory => Path.Combine(_options.Directory, "server");

    public ChildProcess? Server { get; private set; }

    public IReadOnlyList<DemoProbe> Probes => _probes;

    /// <summary>The gRPC port probes use; kept across server restarts so that probes find the server again.</summary>
    public int GrpcPort { get; private set; }

    public Uri? HttpUrl { get; private set; }

    public string CaPin { get; private set; } = "";

    /// <summary>
    /// Builds the lab, starts the server, the aggregator and the probes; on failure or cancellation (checked between
    /// steps) removes what it made.
    /// </summary>
    public static async Task<DemoCluster> StartAsync(DemoClusterOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        System.IO.Directory.CreateDirectory(options.Directory);
        var cluster = new DemoCluster(options, DemoNetwork.Create(options.Probes));
        try
        {
            cluster.Responders = DemoResponders.Start(cluster.Network.ServerAddress);
            await cluster.StartServerAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            await cluster.JoinProbesAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            foreach (var probe in cluster._probes)
                cluster.WriteProbeConfig(probe, options.ProbeSettings?.Invoke(probe) ?? []);
            await Task.WhenAll(cluster._probes.Select(p => cluster.StartProbeAsync(p))).WaitAsync(cancellationToken).ConfigureAwait(false);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts the server (again) on the cluster's data directory; the first start picks a free port.</summary>
    public async Task StartServerAsync()
    {
        var environment = new Dictionary<string, string>
        {
            ["Server__TlsNames__0"] = Network.ServerAddress,
            ["Server__InitialPolicy__HeartbeatInterval"] = _options.HeartbeatInterval.ToString("c", CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in AggregatorSettings())
            environment[key] = value;
        foreach (var (key, value) in _options.ServerSettings)
            environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        Server = ChildProcess.Start("server", [
            "server", "run", "--data-dir", ServerDirectory,
            "--grpc-listen", $"[{Network.ServerAddress}]:{GrpcPort}",
            "--http-listen", HttpUrl is null ? "127.0.0.1:0" : $"127.0.0.1:{HttpUrl.Port}",
        ], environment, echo: Prefix("server"));
        CaPin = await Server.WaitForLineAsync("ca-hash: ", StartTimeout).ConfigureAwait(false);
        GrpcPort = new Uri(Server.Line("grpc: ")!).Port;
        HttpUrl = new Uri(Server.Line("http: ")!);
    }

    /// <summary>The embedded aggregator's settings: schedules short enough for a demo.</summary>
    private Dictionary<string, string> AggregatorSettings() => new()
    {
        ["Aggregator__Schedules__Parse"] = _options.ParseSchedule,
        ["Aggregator__Schedules__Aggregate"] = _options.AggregateSchedule,
        ["Aggregator__Schedules__Cleanup"] = _options.CleanupSchedule,
        // Aggregate today's partition too: a demo has no closed days.
        ["Aggregator__IncludeOpenPartitions"] = "true",
        ["Aggregator__LockWait"] = "00:00:05",
        ["Aggregator__RetryBackoff"] = "00:00:05",
        ["Aggregator__MaxRetryBackoff"] = "00:00:30",
    };

    /// <summary>Runs <c>survey6 ARGS</c> against the server's data directory and returns its output.</summary>
    public Task<string> ServerCliAsync(params string[] arguments) =>
        ChildProcess.RunAsync("survey6 " + string.Join(' ', arguments.Take(3)), [.. arguments, "--data-dir", ServerDirectory], TimeSpan.FromSeconds(60));

    /// <summary>The <c>probe.json</c> a probe runs with; <paramref name="extra"/> sets more keys (<c>Probe:Spool:Directory</c>).</summary>
    public void WriteProbeConfig(DemoProbe probe, params (string Path, JsonNode Value)[] extra)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(extra);
        // The product's capture filter: the probe leaves its own uploads and control stream out by itself, and what the
        // kernel sends on its own (neighbour discovery, MLD) is captured as on any host.
        var capture = new JsonObject { ["Interfaces"] = new JsonArray(probe.Host.InnerLink) };
        var spool = new JsonObject { ["RotateAge"] = _options.RotateAge.ToString("c", CultureInfo.InvariantCulture) };
        var probeSection = new JsonObject
        {
            ["Labels"] = new JsonObject { ["host"] = probe.Host.Index.ToString(CultureInfo.InvariantCulture), ["lab"] = Network.Id },
            ["Location"] = "52.37,4.89,NL,Amsterdam",
            ["Capture"] = capture,
            ["Spool"] = spool,
        };
        if (_options.QuickProbes)
        {
            capture["StatisticsInterval"] = "00:00:01";
            capture["RetryInterval"] = "00:00:01";
            spool["MinFreeDiskBytes"] = 1 << 20;
            spool["GuardInterval"] = "00:00:00.200";
            probeSection["Upload"] = new JsonObject { ["IdleBytesPerSecond"] = 0, ["RetryDelay"] = "00:00:01" };
        }

        var root = new JsonObject { ["Probe"] = probeSection };
        foreach (var (path, value) in extra)
        {
            var parts = path.Split(':');
            var node = root;
            foreach (var part in parts[..^1])
                node = (JsonObject)(node[part] ??= new JsonObject());
            node[parts[^1]] = value;
        }

        File.WriteAllText(probe.ConfigFile, root.ToJsonString());
    }

    /// <summary>Starts (or restarts) a probe's daemon inside its namespace and waits until it captures.</summary>
    public async Task StartProbeAsync(DemoProbe probe, IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (!File.Exists(probe.ConfigFile))
            WriteProbeConfig(probe);
        probe.Daemon = ChildProcess.Start("probe" + probe.Host.Index, ["probe", "run", "--config", probe.ConfigFile, "--state-dir", probe.StateDirectory],
            environment, probe.Host.Namespace, Prefix("probe" + probe.Host.Index));
        var deadline = DateTime.UtcNow + StartTimeout;
        while (await probe.TryStatusAsync().ConfigureAwait(false) is not { State: ProbeStatus.Capturing })
        {
            if (probe.Daemon.HasExited || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"probe {probe.Host.Index} did not start capturing:\n{probe.Daemon.Output}");
            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    /// <summary>Stops a probe's daemon with SIGTERM (it closes its open file) and waits for it.</summary>
    public async Task StopProbeAsync(DemoProbe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (probe.Daemon is { } daemon)
        {
            if (!await daemon.StopAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false))
                throw new InvalidOperationException($"probe {probe.Host.Index} did not stop on SIGTERM:\n{daemon.Output}");
            daemon.Dispose();
            probe.Daemon = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Every process at once (SIGTERM, then SIGKILL after 10 s), so that cleanup fits in the time a service manager
        // or System.CommandLine's termination timeout gives; probes close their files on SIGTERM.
        try
        {
            await _joining.ConfigureAwait(false); // join processes are short; let them end rather than orphan them
        }
        catch (Exception)
        {
            // Reported by StartAsync already.
        }

        var children = _probes.Select(p => p.Daemon).Append(Server).OfType<ChildProcess>().ToList();
        await Task.WhenAll(children.Select(c => c.StopAsync(TimeSpan.FromSeconds(10)))).ConfigureAwait(false);
        foreach (var child in children)
            child.Dispose();
        foreach (var probe in _probes)
            probe.Daemon = null;

        if (Responders is not null)
            await Responders.DisposeAsync().ConfigureAwait(false);
        Network.Dispose();
    }

    private Task JoinProbesAsync() => _joining = JoinAllAsync();

    private async Task JoinAllAsync()
    {
        // One token for all hosts, printed with the join command an operator would paste on each host.
        var created = await ServerCliAsync("server", "token", "create", "--ttl", "1h", "--uses", Network.Hosts.Count.ToString(CultureInfo.InvariantCulture),
            "--label", "lab=" + Network.Id, "--description", "survey6 demo").ConfigureAwait(false);
        var joinLine = created.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("survey6 probe join ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("token create printed no join command:\n" + created);
        var join = joinLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
        var joined = await Task.WhenAll(Network.Hosts.Select(async host =>
        {
            var probe = new DemoProbe(host, Path.Combine(_options.Directory, "probes", host.Index.ToString(CultureInfo.InvariantCulture)));
            System.IO.Directory.CreateDirectory(probe.Directory);
            var output = await ChildProcess.RunAsync("probe join " + host.Index, [.. join, "--state-dir", probe.StateDirectory, "--label", "host=" + host.Index],
                StartTimeout, networkNamespace: host.Namespace).ConfigureAwait(false);
            probe.ProbeId = ReadProbeId(probe.StateDirectory) ?? throw new InvalidOperationException("probe join left no probe id:\n" + output);
            return probe;
        })).ConfigureAwait(false);
        _probes.AddRange(joined);
    }

    private static string? ReadProbeId(string stateDirectory)
    {
        var file = Path.Combine(stateDirectory, "probe.json");
        return File.Exists(file) ? JsonNode.Parse(File.ReadAllText(file))?["probe_id"]?.GetValue<string>() : null;
    }

    private Action<string>? Prefix(string name) => _options.Echo is { } echo ? line => echo($"[{name}] {line}") : null;
}

using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using Survey6.Testbed;

namespace Survey6.Cli.Demo;

/// <summary>
/// <c>survey6 demo</c>: the whole system on this machine. Installs missing system packages, starts the C&amp;C and the
/// aggregator, creates network namespaces acting as remote hosts, joins a probe in each with a join token, sends
/// IPv6 traffic there, and prints where to look. Ctrl-C (or SIGTERM) removes everything it created.
/// </summary>
public static class DemoCommand
{
    /// <summary>Debian packages the demo needs at run time (libpcap for capture, ip and ping for the lab).</summary>
    private static readonly string[] Packages = ["libpcap0.8", "iproute2", "iputils-ping"];

    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir") { Description = "Where the server, the lake and the probes keep their files (default: a new /tmp/survey6-demo-* directory)" };
        var keep = new Option<bool>("--keep") { Description = "Keep the data directory when the demo stops (processes, namespaces and links are always removed)" };
        var probes = new Option<int>("--probes") { Description = "Remote hosts (network namespaces), each with a probe", DefaultValueFactory = _ => 3 };
        var verbose = new Option<bool>("--verbose") { Description = "Show every component's log lines" };
        var command = new Command("demo", "Run server, aggregator and probes in network namespaces on this machine, with traffic; Ctrl-C removes it all (needs root)")
        {
            dataDir, keep, probes, verbose,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(dataDir), parse.GetValue(keep), parse.GetValue(probes), parse.GetValue(verbose),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string? dataDir, bool keep, int probeCount, bool verbose, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        if (probeCount is < 1 or > 9)
            return Fail(error, "--probes must be between 1 and 9");
        if (Environment.UserName != "root" && !IsRoot())
            return Fail(error, "it creates network namespaces and veth links and captures packets, which needs root: run `sudo ./survey6 demo`");
        if (!await EnsurePackagesAsync(output, error, cancellationToken).ConfigureAwait(false))
            return 1;

        var createdDirectory = dataDir is null;
        var directory = Path.GetFullPath(dataDir ?? Directory.CreateTempSubdirectory("survey6-demo-").FullName);
        if (!createdDirectory && Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
            return Fail(error, $"--data-dir {directory} is not empty; give a new or empty directory");
        Directory.CreateDirectory(directory);

        var echo = verbose ? new Action<string>(line => { lock (output) output.WriteLine(line); }) : null;
        DemoCluster? cluster = null;
        try
        {
            output.WriteLine($"survey6 demo: starting in {directory} (server, aggregator, {probeCount} probes in network namespaces) ...");
            cluster = await DemoCluster.StartAsync(new DemoClusterOptions
            {
                Directory = directory,
                Probes = probeCount,
                HeartbeatInterval = TimeSpan.FromSeconds(5),
                RotateAge = TimeSpan.FromSeconds(30),
                ParseSchedule = "0/15 * * * * ?",
                AggregateSchedule = "10 * * * * ?",
                Echo = echo,
            }, cancellationToken).ConfigureAwait(false);

            var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(15)).Replace('/', 'x').Replace('+', 'y');
            await ChildProcess.RunAsync("admin set-password", ["server", "admin", "set-password", "--data-dir", cluster.ServerDirectory], TimeSpan.FromSeconds(60),
                standardInput: password + "\n").ConfigureAwait(false);
            PrintWelcome(output, cluster, directory, password);

            await GenerateTrafficAsync(cluster, output, cancellationToken).ConfigureAwait(false);
            return 0;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return Fail(error, e.Message);
        }
        finally
        {
            output.WriteLine("survey6 demo: stopping probes, aggregator and server; removing namespaces and links ...");
            if (cluster is not null)
                await cluster.DisposeAsync().ConfigureAwait(false);
            if (createdDirectory && !keep)
            {
                TryDelete(directory);
                output.WriteLine($"survey6 demo: removed {directory}");
            }
            else
            {
                output.WriteLine($"survey6 demo: data kept in {directory}");
            }
        }
    }

    private static void PrintWelcome(TextWriter output, DemoCluster cluster, string directory, string password)
    {
        var data = cluster.ServerDirectory;
        output.WriteLine();
        output.WriteLine($"  web UI     {cluster.HttpUrl}   user admin, password {password}");
        output.WriteLine($"  probes     grpc https://[{cluster.Network.ServerAddress}]:{cluster.GrpcPort}, CA {cluster.CaPin}");
        foreach (var probe in cluster.Probes)
            output.WriteLine($"             {probe.ProbeId} in namespace {probe.Host.Namespace} ({probe.Host.Address}), state {probe.StateDirectory}");
        output.WriteLine($"  data       {directory}");
        output.WriteLine();
        output.WriteLine("  Try, in another terminal:");
        output.WriteLine($"    ./survey6 server probes --data-dir {data}");
        output.WriteLine($"    ./survey6 probe status --state-dir {cluster.Probes[0].StateDirectory}");
        output.WriteLine($"    ./survey6 aggregate status --data-dir {data}");
        output.WriteLine($"    ./survey6 query \"SELECT probe_id, count(*) AS packets FROM packets GROUP BY ALL\" --data-dir {data}");
        output.WriteLine($"    ./survey6 query \"SELECT * FROM summary ORDER BY hour\" --data-dir {data}");
        output.WriteLine();
        output.WriteLine("  Files rotate every 30 s and are uploaded at once; the lake is parsed every 15 s and aggregated every minute.");
        output.WriteLine("  Press Ctrl-C to stop and remove everything.");
        output.WriteLine();
    }

    /// <summary>Every few seconds, from every host: echoes, UDP datagrams, a TCP connection and DNS lookups.</summary>
    private static async Task GenerateTrafficAsync(DemoCluster cluster, TextWriter output, CancellationToken cancellationToken)
    {
        var server = cluster.Network.ServerAddress;
        long rounds = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.WhenAll(cluster.Probes.Select(async probe =>
            {
                var host = probe.Host;
                await Task.Run(() => cluster.Network.Ping(host, 3, 56 + host.Index, 0.05), cancellationToken).ConfigureAwait(false);
                await DemoSender.UdpAsync(host, server, DemoResponders.UdpPort, 10, 100 * host.Index, cancellationToken).ConfigureAwait(false);
                await DemoSender.TcpAsync(host, server, 1, 2000, cancellationToken).ConfigureAwait(false);
                await DemoSender.DnsAsync(host, server, $"host{host.Index}.demo.example", 2, cancellationToken).ConfigureAwait(false);
            })).ConfigureAwait(false);
            if (++rounds % 12 == 0)
                output.WriteLine($"survey6 demo: {rounds} rounds of traffic sent from {cluster.Probes.Count} hosts");
            await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Installs missing packages with apt-get, as test.sh does.</summary>
    private static async Task<bool> EnsurePackagesAsync(TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var missing = new List<string>();
        foreach (var package in Packages)
        {
            var (code, status, _) = DemoNetwork.Run("dpkg-query", "-W", "-f=${Status}", package);
            if (code != 0 || !status.Contains("install ok installed", StringComparison.Ordinal))
                missing.Add(package);
        }

        if (missing.Count == 0)
            return true;
        output.WriteLine($"survey6 demo: installing {string.Join(' ', missing)} ...");
        await Task.Run(() => DemoNetwork.Run("apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-qq"), cancellationToken).ConfigureAwait(false);
        var (exit, _, stderr) = await Task.Run(() => DemoNetwork.Run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", .. missing]), cancellationToken).ConfigureAwait(false);
        if (exit == 0)
            return true;
        error.WriteLine($"survey6 demo: apt-get install {string.Join(' ', missing)} failed: {stderr.Trim()}");
        return false;
    }

    private static bool IsRoot()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
                return line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2] == "0";
        }

        return false;
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine("survey6 demo: " + message);
        return 1;
    }
}

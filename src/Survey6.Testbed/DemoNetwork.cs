using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace Survey6.Testbed;

/// <summary>
/// Remote hosts on one machine: a bridge in the current network namespace holding the server's address, and one
/// network namespace per host, joined to the bridge by a veth pair. Addresses come from a random /64 of
/// fd5e:6a00::/48 (the bridge is ::1, host k is ::1k); names carry a random suffix so several labs can exist at
/// once. <see cref="Dispose"/> removes what was created, in reverse order, and tolerates half-built labs.
/// </summary>
public sealed class DemoNetwork : IDisposable
{
    private readonly List<string[]> _cleanup = [];

    private DemoNetwork(string id)
    {
        Id = id;
        Prefix = $"fd5e:6a00:{id[..4]}:{id[4..]}";
        Bridge = "s6b" + id;
        ServerAddress = Prefix + "::1";
    }

    /// <summary>Eight hex digits that name every link and namespace of this lab.</summary>
    public string Id { get; }

    /// <summary>The /64 (without length), e.g. <c>fd5e:6a00:1a2b:3c4d</c>.</summary>
    public string Prefix { get; }

    public string Bridge { get; }

    /// <summary>The bridge's address: where the C&amp;C listens and the traffic responders answer.</summary>
    public string ServerAddress { get; }

    public IReadOnlyList<DemoHost> Hosts => _hosts;

    private readonly List<DemoHost> _hosts = [];

    /// <summary>Creates the bridge and <paramref name="hosts"/> namespaces; needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).</summary>
    public static DemoNetwork Create(int hosts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(hosts, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(hosts, 9);
        var lab = new DemoNetwork(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        try
        {
            lab.Ip("link", "add", lab.Bridge, "type", "bridge");
            lab._cleanup.Insert(0, ["link", "del", lab.Bridge]);
            // nodad: usable at once, no duplicate-address probes on the wire.
            lab.Ip("addr", "add", lab.ServerAddress + "/64", "dev", lab.Bridge, "nodad");
            lab.Ip("link", "set", lab.Bridge, "up");
            for (var k = 1; k <= hosts; k++)
            {
                var host = new DemoHost(
                    Index: k,
                    Namespace: $"s6h-{lab.Id}-{k}",
                    Link: $"s6v{lab.Id}{k}",
                    InnerLink: $"s6i{lab.Id}{k}",
                    Address: $"{lab.Prefix}::1{k}");
                lab.Ip("netns", "add", host.Namespace);
                lab._cleanup.Add(["netns", "del", host.Namespace]);
                lab.Ip("link", "add", host.Link, "type", "veth", "peer", "name", host.InnerLink, "netns", host.Namespace);
                lab._cleanup.Insert(0, ["link", "del", host.Link]);
                lab.Ip("link", "set", host.Link, "master", lab.Bridge);
                lab.Ip("link", "set", host.Link, "up");
                lab.Ip("-n", host.Namespace, "link", "set", "lo", "up");
                lab.Ip("-n", host.Namespace, "addr", "add", host.Address + "/64", "dev", host.InnerLink, "nodad");
                lab.Ip("-n", host.Namespace, "link", "set", host.InnerLink, "up");
                lab._hosts.Add(host);
            }

            lab.WaitForLinks();
            return lab;
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    }

    /// <summary>Takes the host's link down at the bridge (a cut cable upstream of the host) or brings it back.</summary>
    public void SetLink(DemoHost host, bool up)
    {
        ArgumentNullException.ThrowIfNull(host);
        Ip("link", "set", host.Link, up ? "up" : "down");
    }

    /// <summary>ping -6 from a host to the server's address; returns how many replies came back.</summary>
    public int Ping(DemoHost host, int count, int size, double interval = 0.01)
    {
        ArgumentNullException.ThrowIfNull(host);
        var result = Run("ip", "netns", "exec", host.Namespace, "ping", "-6", "-n", "-q",
            "-c", count.ToString(CultureInfo.InvariantCulture),
            "-s", size.ToString(CultureInfo.InvariantCulture),
            "-i", interval.ToString(CultureInfo.InvariantCulture), "-W", "2", ServerAddress);
        // "5 packets transmitted, 5 received, 0% packet loss"
        var marker = result.Output.IndexOf(" received", StringComparison.Ordinal);
        if (marker < 0)
            return 0;
        var start = result.Output.LastIndexOf(' ', marker - 1) + 1;
        return int.Parse(result.Output.AsSpan(start, marker - start), CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        foreach (var step in _cleanup)
            Run("ip", step); // best effort: every step, even after one fails
        _cleanup.Clear();
    }

    private void WaitForLinks()
    {
        // A veth reports carrier a moment after both ends are up; traffic sent before that is lost.
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (_hosts.All(h => Ping(h, 1, 8, 0.2) == 1))
                return;
            Thread.Sleep(100);
        }

        throw new InvalidOperationException("the lab's links did not come up within 10 s");
    }

    private void Ip(params string[] arguments)
    {
        var result = Run("ip", arguments);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)} failed: {result.Error.Trim()}");
    }

    /// <summary>Runs a tool to its end; returns its exit code and output (LC_ALL=C).</summary>
    public static (int ExitCode, string Output, string Error) Run(string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        start.Environment["LC_ALL"] = "C";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + tool);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output.Result, error);
    }
}

/// <summary>One remote host: its namespace, the bridge-side link, the link inside the namespace, its address.</summary>
public sealed record DemoHost(int Index, string Namespace, string Link, string InnerLink, string Address);

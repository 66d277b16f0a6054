using System.Globalization;
using System.Security.Cryptography;

namespace Survey6.Probe.Tests.Support;

/// <summary>
/// A network namespace made for one test, joined to the host by a veth pair: the probe captures on
/// the host end, traffic is sent from the namespace end. Addresses come from 2001:db8::/32 (a random
/// /64 per lab) and, for tunnels, a /30 of TEST-NET-1 (192.0.2.0/24); names are random, so labs of
/// tests running in parallel never meet. Dispose removes the links and the namespace, whatever the
/// test's outcome.
/// </summary>
internal sealed class NetworkLab : IDisposable
{
    private static int _ipv4Subnets = RandomNumberGenerator.GetInt32(64);
    private readonly List<string[]> _cleanup = [];

    public NetworkLab(bool ipv4 = false)
    {
        Tool.RequireRoot();
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        Namespace = "s6p-" + id;
        HostInterface = "s6h" + id;
        NamespaceInterface = "s6n" + id;
        var prefix = $"2001:db8:{id[..4]}:{id[4..]}";
        HostAddress = prefix + "::1";
        NamespaceAddress = prefix + "::2";
        try
        {
            Ip("netns", "add", Namespace);
            _cleanup.Add(["netns", "del", Namespace]);
            Ip("link", "add", HostInterface, "type", "veth", "peer", "name", NamespaceInterface, "netns", Namespace);
            _cleanup.Insert(0, ["link", "del", HostInterface]);
            // nodad: usable at once, no duplicate-address probes in the capture.
            Ip("addr", "add", HostAddress + "/64", "dev", HostInterface, "nodad");
            Ip("link", "set", HostInterface, "up");
            InNamespace("ip", "link", "set", "lo", "up");
            InNamespace("ip", "addr", "add", NamespaceAddress + "/64", "dev", NamespaceInterface, "nodad");
            InNamespace("ip", "link", "set", NamespaceInterface, "up");
            if (ipv4)
            {
                // One /30 of 192.0.2.0/24 per lab in this process; the random start keeps two test runs apart too.
                var subnet = (Interlocked.Increment(ref _ipv4Subnets) % 64) * 4;
                HostIPv4 = string.Create(CultureInfo.InvariantCulture, $"192.0.2.{subnet + 1}");
                NamespaceIPv4 = string.Create(CultureInfo.InvariantCulture, $"192.0.2.{subnet + 2}");
                Ip("addr", "add", HostIPv4 + "/30", "dev", HostInterface);
                InNamespace("ip", "addr", "add", NamespaceIPv4 + "/30", "dev", NamespaceInterface);
                // Static neighbours both ways: a lab's IPv4 must not hang on ARP, whose entry a busy machine can find
                // FAILED before the first send (a ping once got "+3 errors" in 58 ms). The tests add traffic over
                // this /30; they do not test ARP.
                var hostMac = File.ReadAllText($"/sys/class/net/{HostInterface}/address").Trim();
                var namespaceMac = InNamespace("cat", $"/sys/class/net/{NamespaceInterface}/address").Stdout.Trim();
                Ip("neigh", "replace", NamespaceIPv4, "lladdr", namespaceMac, "dev", HostInterface, "nud", "permanent");
                InNamespace("ip", "neigh", "replace", HostIPv4, "lladdr", hostMac, "dev", NamespaceInterface, "nud", "permanent");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Namespace { get; }

    /// <summary>The probe captures here.</summary>
    public string HostInterface { get; }

    public string NamespaceInterface { get; }

    public string HostAddress { get; }

    public string NamespaceAddress { get; }

    public string? HostIPv4 { get; }

    public string? NamespaceIPv4 { get; }

    /// <summary>
    /// A real 6in4 tunnel (sit) between host and namespace over the IPv4 /30, with a /64 of its own;
    /// false when this kernel has no sit driver (then <paramref name="reason"/> says so).
    /// </summary>
    public bool TryAddSitTunnel(out string hostTunnelAddress, out string namespaceTunnelAddress, out string reason)
    {
        var id = Namespace[4..];
        var name = "s6t" + id;
        var prefix = $"2001:db8:{id[..4]}:{(Convert.ToInt32(id[4..], 16) ^ 0x8000):x4}";
        hostTunnelAddress = prefix + "::1";
        namespaceTunnelAddress = prefix + "::2";
        var added = Tool.Run("ip", "link", "add", name, "type", "sit", "local", HostIPv4!, "remote", NamespaceIPv4!, "ttl", "64");
        if (added.ExitCode != 0)
        {
            reason = added.Stderr.Trim();
            return false;
        }

        _cleanup.Insert(0, ["link", "del", name]);
        Ip("addr", "add", hostTunnelAddress + "/64", "dev", name, "nodad");
        Ip("link", "set", name, "up");
        InNamespace("ip", "link", "add", name, "type", "sit", "local", NamespaceIPv4!, "remote", HostIPv4!, "ttl", "64");
        InNamespace("ip", "addr", "add", namespaceTunnelAddress + "/64", "dev", name, "nodad");
        InNamespace("ip", "link", "set", name, "up");
        reason = "";
        return true;
    }

    /// <summary>Runs a command inside the namespace; fails the test if it fails.</summary>
    public ToolResult InNamespace(params string[] command) => Tool.Run("ip", ["netns", "exec", Namespace, .. command]).Check();

    /// <summary>ping -6 from the namespace; every reply must come back.</summary>
    public void Ping(string target, int count, double interval = 0.02, int size = 56)
    {
        var result = InNamespace("ping", "-6", "-n", "-q", "-c", count.ToString(CultureInfo.InvariantCulture),
            "-i", interval.ToString(CultureInfo.InvariantCulture), "-s", size.ToString(CultureInfo.InvariantCulture), "-W", "2", target);
        Assert.Contains($"{count} packets transmitted, {count} received", result.Stdout, StringComparison.Ordinal);
    }

    /// <summary>Runs <see cref="Program"/> (this assembly) inside the namespace to send traffic.</summary>
    public void Send(params string[] arguments)
    {
        var result = InNamespace([Tool.Dotnet(), typeof(Program).Assembly.Location, .. arguments]);
        Assert.StartsWith("SENT ", result.Stdout, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        foreach (var command in _cleanup)
            Tool.Run("ip", command); // best effort, every step even if one fails
        _cleanup.Clear();
    }

    private static void Ip(params string[] arguments) => Tool.Run("ip", arguments).Check();
}

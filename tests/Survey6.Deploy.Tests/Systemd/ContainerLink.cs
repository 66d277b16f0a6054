using System.Security.Cryptography;

namespace Survey6.Deploy.Tests.Systemd;

/// <summary>
/// Two network namespaces, one per container, joined by a veth pair that carries IPv6 from a random /64 of
/// fd5e:6a00::/48 (never the host's fd00::/64); names are random, so concurrent runs never meet. Both ends and
/// loopback are up, addresses without duplicate-address detection, before the containers boot; the namespaces
/// (and the link with them) are recorded with the lab and removed by it.
/// </summary>
internal sealed class ContainerLink
{
    public ContainerLink(Lab lab)
    {
        var id = lab.Id;
        ServerNamespace = "s6sv-" + id;
        ProbeNamespace = "s6pr-" + id;
        ServerInterface = "s6a" + id;
        ProbeInterface = "s6b" + id;
        // Both groups non-zero, so the addresses below are already in RFC 5952 form, as the lake writes them.
        var prefix = $"fd5e:6a00:{RandomNumberGenerator.GetInt32(1, 0x10000):x}:{RandomNumberGenerator.GetInt32(1, 0x10000):x}";
        ServerAddress = prefix + "::1";
        ProbeAddress = prefix + "::2";

        foreach (var ns in new[] { ServerNamespace, ProbeNamespace })
        {
            Tool.Run("ip", "netns", "add", ns).Check();
            lab.Record("netns", ns);
            Tool.Run("ip", "-n", ns, "link", "set", "lo", "up").Check();
        }

        Tool.Run("ip", "link", "add", ServerInterface, "netns", ServerNamespace, "type", "veth", "peer", "name", ProbeInterface, "netns", ProbeNamespace).Check();
        foreach (var (ns, dev, address) in new[] { (ServerNamespace, ServerInterface, ServerAddress), (ProbeNamespace, ProbeInterface, ProbeAddress) })
        {
            Tool.Run("ip", "-n", ns, "addr", "add", address + "/64", "dev", dev, "nodad").Check();
            Tool.Run("ip", "-n", ns, "link", "set", dev, "up").Check();
        }
    }

    public string ServerNamespace { get; }

    public string ProbeNamespace { get; }

    public string ServerInterface { get; }

    public string ProbeInterface { get; }

    /// <summary>The C&amp;C's address, on the server container's end.</summary>
    public string ServerAddress { get; }

    /// <summary>The probe host's address, on the probe container's end.</summary>
    public string ProbeAddress { get; }
}

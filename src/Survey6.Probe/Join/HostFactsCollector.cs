using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using Survey6.Contracts.V1;

namespace Survey6.Probe.Join;

/// <summary>What a probe tells the server about its host when it joins.</summary>
public static class HostFactsCollector
{
    public static HostFacts Collect(IReadOnlyDictionary<string, string> labels, Location? location, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var facts = new HostFacts
        {
            Hostname = Dns.GetHostName(),
            Os = OperatingSystemName(),
            Kernel = KernelRelease(),
            SoftwareVersion = SoftwareVersion,
            Name = name ?? "",
        };
        facts.Interfaces.AddRange(Interfaces());
        foreach (var (key, value) in labels)
            facts.Labels[key] = value;
        if (location is not null)
            facts.Location = location;
        return facts;
    }

    public static string SoftwareVersion { get; } =
        typeof(HostFactsCollector).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(HostFactsCollector).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>PRETTY_NAME from /etc/os-release, else the runtime's description.</summary>
    internal static string OperatingSystemName(string osRelease = "/etc/os-release")
    {
        try
        {
            foreach (var line in File.ReadLines(osRelease))
            {
                if (line.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))
                    return line["PRETTY_NAME=".Length..].Trim().Trim('"', '\'');
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return RuntimeInformation.OSDescription;
    }

    /// <summary>What <c>uname -r</c> prints.</summary>
    private static string KernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return Environment.OSVersion.Version.ToString();
        }
    }

    private static IEnumerable<Interface> Interfaces()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            var entry = new Interface { Name = nic.Name, Mac = FormatMac(nic.GetPhysicalAddress()) };
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                var address = unicast.Address;
                if (address.AddressFamily == AddressFamily.InterNetworkV6)
                    address = new IPAddress(address.GetAddressBytes()); // drop the %scope: the interface name says it
                entry.Addresses.Add(address + "/" + unicast.PrefixLength.ToString(CultureInfo.InvariantCulture));
            }

            yield return entry;
        }
    }

    private static string FormatMac(PhysicalAddress mac)
    {
        var bytes = mac.GetAddressBytes();
        return bytes.Length == 0 || bytes.All(b => b == 0) ? "" : string.Join(':', bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
    }
}

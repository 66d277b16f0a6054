using System.Net;
using Survey6.Packets.Capture;
using Survey6.Probe.Join;

namespace Survey6.Probe;

/// <summary>What every spool file says about the probe that wrote it (SHB options and survey6 metadata).</summary>
public sealed record ProbeIdentity(
    string ProbeId,
    bool Joined,
    string Hostname,
    string Version,
    string Hardware,
    string OperatingSystem,
    IReadOnlyDictionary<string, string> Labels,
    string? Location)
{
    /// <summary>Used in files when the state directory holds no join and no <c>Probe:Id</c> is configured.</summary>
    public const string UnjoinedId = "unjoined";

    public static ProbeIdentity From(ProbeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var joinedId = new ProbeStateDirectory(options.StateDirectory).ReadProbeId();
        var id = joinedId ?? (string.IsNullOrWhiteSpace(options.Id) ? UnjoinedId : options.Id);
        return new ProbeIdentity(
            id,
            joinedId is not null,
            Dns.GetHostName(),
            HostFactsCollector.SoftwareVersion,
            CpuModel(),
            $"{HostFactsCollector.OperatingSystemName()}, Linux {KernelRelease()}",
            new SortedDictionary<string, string>(options.Labels, StringComparer.Ordinal),
            ProbeOptions.FormatLocation(options.Location));
    }

    /// <summary>The SHB for a file of a capture run that started at <paramref name="captureStart"/>.</summary>
    public PcapngSectionInfo Section(DateTimeOffset captureStart)
    {
        var metadata = new List<KeyValuePair<string, string>>
        {
            new(PcapngMetadata.ProbeId, ProbeId),
            new(PcapngMetadata.Hostname, Hostname),
            new(PcapngMetadata.Version, Version),
        };
        if (Labels.Count > 0)
            metadata.Add(new(PcapngMetadata.Labels, PcapngMetadata.FormatLabels(Labels)));
        if (Location is not null)
            metadata.Add(new(PcapngMetadata.Location, Location));
        metadata.Add(new(PcapngMetadata.CaptureStart, PcapngMetadata.FormatTimestamp(UnixNanoseconds(captureStart))));
        return new PcapngSectionInfo
        {
            Hardware = Hardware,
            Os = OperatingSystem,
            UserApplication = "survey6 " + Version,
            Metadata = metadata,
        };
    }

    public static long UnixNanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
                    return line[(colon + 1)..].Trim();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return System.Runtime.InteropServices.RuntimeInformation.OSArchitecture.ToString();
    }

    private static string KernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Environment.OSVersion.Version.ToString();
        }
    }
}

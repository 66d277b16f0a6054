using Google.Protobuf.Collections;
using Survey6.Contracts;
using Survey6.Contracts.V1;

namespace Survey6.Server.Enrollment;

/// <summary>
/// Bounds on everything a probe says about itself, which the server stores and shows operators. At join, what
/// names the probe to operators (hostname, name, labels, location) is refused when out of bounds, with the reason:
/// cutting it would show a different name than the host has. What <c>probe join</c> collects from the host on its
/// own (os, kernel, version, interfaces and their addresses) is cut to the bounds instead: a real host may exceed
/// them (a container host with hundreds of veths) and must still be able to join, and these facts grant nothing.
/// Heartbeats are cut, never refused: a refused heartbeat would hide the probe's state.
/// </summary>
public static class HostFactLimits
{
    /// <summary>RFC 1035's limit for a whole domain name; no host has a longer name.</summary>
    public const int MaxHostnameLength = 253;
    public const int MaxPlaceLength = 128;

    public const int MaxOsLength = 256;

    /// <summary>The kernel's own limit for <c>uname -r</c> (<c>__NEW_UTS_LEN</c>).</summary>
    public const int MaxKernelLength = 64;
    public const int MaxVersionLength = 100;
    public const int MaxInterfaces = 64;
    public const int MaxInterfaceNameLength = 64;
    public const int MaxMacLength = 64;
    public const int MaxAddressesPerInterface = 32;

    /// <summary>An IPv6 address with a zone and a prefix length fits easily; a longer one is no address and is dropped.</summary>
    public const int MaxAddressLength = 64;
    public const int MaxStateReasonLength = 500;

    /// <summary>Why the join's facts are refused, or null; then cuts the descriptive facts to their bounds.</summary>
    public static string? CheckAndCut(HostFacts facts)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if ((CheckIdentity(facts) ?? CheckLabels(facts.Labels) ?? CheckPlace(facts)) is { } problem)
            return problem;
        facts.Os = Cut(facts.Os, MaxOsLength);
        facts.Kernel = Cut(facts.Kernel, MaxKernelLength);
        facts.SoftwareVersion = Cut(facts.SoftwareVersion, MaxVersionLength);
        while (facts.Interfaces.Count > MaxInterfaces)
            facts.Interfaces.RemoveAt(facts.Interfaces.Count - 1);
        foreach (var nic in facts.Interfaces)
        {
            nic.Name = Cut(nic.Name, MaxInterfaceNameLength);
            nic.Mac = Cut(nic.Mac, MaxMacLength);
            var kept = nic.Addresses.Where(a => a.Length <= MaxAddressLength).Take(MaxAddressesPerInterface).ToList();
            nic.Addresses.Clear();
            nic.Addresses.AddRange(kept);
        }

        return null;
    }

    /// <summary>Cuts what a heartbeat carries to its bounds.</summary>
    public static void Cut(Heartbeat heartbeat)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        heartbeat.StateReason = Cut(heartbeat.StateReason, MaxStateReasonLength);
        heartbeat.SoftwareVersion = Cut(heartbeat.SoftwareVersion, MaxVersionLength);
        while (heartbeat.Interfaces.Count > MaxInterfaces)
            heartbeat.Interfaces.RemoveAt(heartbeat.Interfaces.Count - 1);
        foreach (var nic in heartbeat.Interfaces)
            nic.Name = Cut(nic.Name, MaxInterfaceNameLength);
    }

    private static string? CheckIdentity(HostFacts facts) =>
        facts.Hostname.Length > MaxHostnameLength ? $"hostname longer than {MaxHostnameLength} characters" : null;

    /// <summary>Name, country and city as <c>probe join</c> checks them, for clients that do not.</summary>
    private static string? CheckPlace(HostFacts facts)
    {
        if (facts.Name.Length > MaxPlaceLength)
            return $"name longer than {MaxPlaceLength} characters";
        if (facts.Location is not { } location)
            return null;
        if (location.Country.Length > 0 && !Survey6.Contracts.CountryCodes.IsAssigned(location.Country))
            return $"country '{Cut(location.Country, 8)}' is not an ISO 3166-1 alpha-2 code";
        if (location.City.Length > MaxPlaceLength)
            return $"city longer than {MaxPlaceLength} characters";
        if ((location.HasLatitude && location.Latitude is < -90 or > 90 or double.NaN) || (location.HasLongitude && location.Longitude is < -180 or > 180 or double.NaN))
            return "latitude must be -90..90 and longitude -180..180";
        return null;
    }

    // The syntax and limits every way of giving labels shares.
    private static string? CheckLabels(MapField<string, string> labels) => ProbeLabels.Check(labels);

    private static string Cut(string text, int length) => text.Length > length ? text[..length] : text;
}

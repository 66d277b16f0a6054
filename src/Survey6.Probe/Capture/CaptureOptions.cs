using Microsoft.Extensions.Options;

namespace Survey6.Probe.Capture;

/// <summary>What and how the probe captures; section <c>Probe:Capture</c>.</summary>
public sealed class CaptureOptions
{
    public const string SectionName = "Probe:Capture";

    /// <summary>
    /// IPv6, IPv6 in IPv4 (6in4, protocol 41), Teredo on its port (UDP 3544) and Teredo on any other port: IPv4 UDP
    /// whose payload is an IPv6 header whose payload length fills the datagram, or that after an origin indication
    /// (0x0000, RFC 4380 section 5.1.1), or a Teredo authentication header (0x0001) followed by an origin indication
    /// or an IPv6 header. A cheap pre-filter: the packet core's Teredo heuristic decides what is IPv6.
    /// </summary>
    public const string DefaultFilter = "ip6 or (ip proto 41) or (udp port 3544) or (ip and udp and ("
        + "(udp[8] & 0xf0 = 0x60 and udp[12:2] + 48 = udp[4:2])"
        + " or (udp[8:2] = 0 and udp[16] & 0xf0 = 0x60 and udp[20:2] + 56 = udp[4:2])"
        + " or (udp[8:2] = 1 and (udp[21 + udp[10] + udp[11]] & 0xf0 = 0x60 or udp[21 + udp[10] + udp[11]:2] = 0))))";

    /// <summary>libpcap's own default: whole frames, jumbo and loopback included.</summary>
    public const int FullSnapLength = 262144;

    /// <summary>Interfaces to capture on (libpcap names); empty means <c>any</c>, libpcap's all-interfaces device.</summary>
    public string[] Interfaces { get; set; } = [];

    /// <summary>BPF expression; empty means <see cref="DefaultFilter"/>.</summary>
    public string Filter { get; set; } = DefaultFilter;

    /// <summary>Bytes kept of each frame when <see cref="PrivacyMode"/> is off.</summary>
    public int SnapLength { get; set; } = FullSnapLength;

    /// <summary>Keep only the first <see cref="PrivacySnapLength"/> bytes of each frame: headers, not payloads.</summary>
    public bool PrivacyMode { get; set; }

    /// <summary>Enough for Ethernet, IPv6 with a few extension headers, and the transport header.</summary>
    public int PrivacySnapLength { get; set; } = 128;

    /// <summary>Kernel ring buffer per interface (pcap_set_buffer_size).</summary>
    public long KernelBufferBytes { get; set; } = 32L << 20;

    public bool Promiscuous { get; set; } = true;

    /// <summary>Deliver each packet at once (pcap_set_immediate_mode) instead of in batches of up to <see cref="ReadTimeout"/>.</summary>
    public bool ImmediateMode { get; set; }

    /// <summary>Longest a packet waits in the kernel before delivery when not in immediate mode.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Frames between capture and the spool writer; a frame that finds the queue full is dropped and counted.</summary>
    public int QueueCapacity { get; set; } = 65536;

    /// <summary>Bytes of frames queued at most; like <see cref="QueueCapacity"/>, a frame beyond it is a queue drop.</summary>
    public long QueueMaxBytes { get; set; } = 256L << 20;

    /// <summary>How often kernel and interface drops are read (pcap_stats).</summary>
    public TimeSpan StatisticsInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Wait before retrying an interface that could not be opened or failed while capturing.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Leave the probe's own traffic with its C&amp;C (every address the server's host resolves to, at the server's
    /// port) out of whatever filter is in force, so that uploads and heartbeats are not captured and uploaded again.
    /// </summary>
    public bool ExcludeOwnTraffic { get; set; } = true;

    /// <summary>How often the C&amp;C's host name is resolved again (also before every control stream connection).</summary>
    public TimeSpan OwnTrafficResolveInterval { get; set; } = TimeSpan.FromMinutes(5);

    public IReadOnlyList<string> EffectiveInterfaces => Interfaces.Length == 0 ? ["any"] : Interfaces;

    public string EffectiveFilter => string.IsNullOrWhiteSpace(Filter) ? DefaultFilter : Filter;

    public int EffectiveSnapLength => PrivacyMode ? PrivacySnapLength : SnapLength;

    /// <summary>What this configuration captures, before any policy from the server.</summary>
    public CaptureSettings Settings => new([.. EffectiveInterfaces], EffectiveFilter, EffectiveSnapLength);
}

/// <summary>
/// What a capture run opens: interfaces, BPF filter, snap length. Starts as the configuration's
/// (<see cref="CaptureOptions.Settings"/>); a policy from the server replaces it while the daemon runs.
/// </summary>
public sealed record CaptureSettings(IReadOnlyList<string> Interfaces, string Filter, int SnapLength)
{
    public bool SameAs(CaptureSettings other) =>
        other is not null && Interfaces.SequenceEqual(other.Interfaces, StringComparer.Ordinal)
        && string.Equals(Filter, other.Filter, StringComparison.Ordinal) && SnapLength == other.SnapLength;

    public override string ToString() => $"{string.Join(",", Interfaces)} '{Filter}' snaplen {SnapLength}";
}

internal sealed class CaptureOptionsValidator : IValidateOptions<CaptureOptions>
{
    public ValidateOptionsResult Validate(string? name, CaptureOptions options)
    {
        var errors = new List<string>();
        foreach (var i in options.Interfaces)
        {
            if (string.IsNullOrWhiteSpace(i))
                errors.Add("Probe:Capture:Interfaces must not contain an empty name");
        }

        if (options.Interfaces.Distinct(StringComparer.Ordinal).Count() != options.Interfaces.Length)
            errors.Add("Probe:Capture:Interfaces names an interface twice");
        if (options.Interfaces.Length > 1 && options.Interfaces.Contains("any", StringComparer.Ordinal))
            errors.Add("Probe:Capture:Interfaces: 'any' already captures every interface; list it alone");
        if (!FilterCompiles(options.EffectiveFilter, out var filterError))
            errors.Add($"Probe:Capture:Filter '{options.EffectiveFilter}' does not compile: {filterError}");
        if (options.SnapLength is < 64 or > CaptureOptions.FullSnapLength)
            errors.Add($"Probe:Capture:SnapLength must be 64..{CaptureOptions.FullSnapLength}");
        if (options.PrivacySnapLength is < 64 or > CaptureOptions.FullSnapLength)
            errors.Add($"Probe:Capture:PrivacySnapLength must be 64..{CaptureOptions.FullSnapLength}");
        if (options.KernelBufferBytes is < 64L << 10 or > int.MaxValue)
            errors.Add("Probe:Capture:KernelBufferBytes must be 64 KiB..2 GiB");
        if (options.ReadTimeout < TimeSpan.FromMilliseconds(1) || options.ReadTimeout > TimeSpan.FromSeconds(10))
            errors.Add("Probe:Capture:ReadTimeout must be 1 ms..10 s");
        if (options.QueueCapacity is < 1 or > 16 << 20)
            errors.Add("Probe:Capture:QueueCapacity must be 1..16777216 frames");
        if (options.QueueMaxBytes < CaptureOptions.FullSnapLength)
            errors.Add($"Probe:Capture:QueueMaxBytes must hold at least one whole frame ({CaptureOptions.FullSnapLength} bytes)");
        if (options.StatisticsInterval < TimeSpan.FromMilliseconds(100) || options.StatisticsInterval > TimeSpan.FromMinutes(10))
            errors.Add("Probe:Capture:StatisticsInterval must be 100 ms..10 min");
        if (options.RetryInterval < TimeSpan.FromMilliseconds(100) || options.RetryInterval > TimeSpan.FromHours(1))
            errors.Add("Probe:Capture:RetryInterval must be 100 ms..1 h");
        if (options.OwnTrafficResolveInterval < TimeSpan.FromSeconds(10) || options.OwnTrafficResolveInterval > TimeSpan.FromDays(1))
            errors.Add("Probe:Capture:OwnTrafficResolveInterval must be 10 s..1 day");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    // A typo in the filter should stop the start, not surface as a capture error once per retry.
    private static bool FilterCompiles(string filter, out string error)
    {
        try
        {
            var ok = SharpPcap.LibPcap.PcapDevice.CheckFilter(filter, out var message);
            error = message ?? "";
            return ok;
        }
        catch (DllNotFoundException e)
        {
            error = "libpcap is not installed (" + e.Message + ")";
            return false;
        }
    }
}

using System.Net;
using Microsoft.Extensions.Options;
using Survey6.Server.Options;

namespace Survey6.Server.Enrollment;

/// <summary>
/// Sliding-window limit on join attempts per source, so join tokens cannot be guessed at speed.
/// IPv6 sources are keyed by their /64: one host usually has a whole /64 to pick addresses from.
/// </summary>
public sealed class JoinRateLimiter(IOptions<JoinRateLimitOptions> options, TimeProvider time)
{
    private readonly SlidingWindowLimiter _limiter = new(time);

    /// <summary>
    /// Counts an attempt from <paramref name="remote"/>; false when the source has used up its
    /// window. <paramref name="firstRefusal"/> is true for one refusal per source and window.
    /// </summary>
    public bool TryAcquire(IPAddress? remote, out bool firstRefusal) =>
        _limiter.TryAcquire(SourceKey(remote), options.Value.PermitLimit, options.Value.Window, out firstRefusal);

    /// <summary>The key a source is counted under: the IPv4 address, or the IPv6 /64.</summary>
    internal static string SourceKey(IPAddress? remote)
    {
        if (remote is null)
            return "unknown";
        if (remote.IsIPv4MappedToIPv6)
            remote = remote.MapToIPv4();
        if (remote.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            Span<byte> bytes = stackalloc byte[16];
            remote.TryWriteBytes(bytes, out _);
            bytes[8..].Clear();
            return new IPAddress(bytes).ToString() + "/64";
        }

        return remote.ToString();
    }
}

/// <summary>Sliding-window limit on certificate renewals per probe (<see cref="RenewalRateLimitOptions"/>).</summary>
public sealed class RenewalRateLimiter(IOptions<RenewalRateLimitOptions> options, TimeProvider time)
{
    private readonly SlidingWindowLimiter _limiter = new(time);

    public RenewalRateLimitOptions Limit => options.Value;

    /// <summary>Counts a renewal of <paramref name="probeId"/>; false when it has used up its window.</summary>
    public bool TryAcquire(string probeId, out bool firstRefusal) =>
        _limiter.TryAcquire(probeId, options.Value.PermitLimit, options.Value.Window, out firstRefusal);
}

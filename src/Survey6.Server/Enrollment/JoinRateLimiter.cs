using System.Net;
using Microsoft.Extensions.Options;
using Survey6.Server.Options;

namespace Survey6.Server.Enrollment;

/// <summary>
/// Sliding-window limit on join attempts per source, so join tokens cannot be guessed at speed.
/// IPv6 sources are keyed by their /64: one host usually has a whole /64 to pick addresses from.
/// Time comes from <see cref="TimeProvider"/> so tests can move it.
/// </summary>
public sealed class JoinRateLimiter(IOptions<JoinRateLimitOptions> options, TimeProvider time)
{
    private const int SweepThreshold = 10_000;
    private readonly Dictionary<string, Source> _sources = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>
    /// Counts an attempt from <paramref name="remote"/>; false when the source has used up its
    /// window. <paramref name="firstRefusal"/> is true for one refusal per source and window, so a
    /// flood is recorded as one event, not thousands of database writes.
    /// </summary>
    public bool TryAcquire(IPAddress? remote, out bool firstRefusal)
    {
        firstRefusal = false;
        var limit = options.Value;
        var now = time.GetTimestamp();
        var window = (long)(limit.Window.TotalSeconds * time.TimestampFrequency);
        var key = SourceKey(remote);
        lock (_lock)
        {
            if (_sources.Count > SweepThreshold)
                Sweep(now, window);
            if (!_sources.TryGetValue(key, out var source))
                _sources[key] = source = new Source();
            var attempts = source.Attempts;
            while (attempts.Count > 0 && now - attempts.Peek() >= window)
                attempts.Dequeue();
            if (attempts.Count >= limit.PermitLimit)
            {
                firstRefusal = source.ReportedRefusalAt is not { } reported || now - reported >= window;
                if (firstRefusal)
                    source.ReportedRefusalAt = now;
                return false;
            }

            attempts.Enqueue(now);
            return true;
        }
    }

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

    // Drops sources idle for a whole window so scanners cannot grow the table without bound.
    private void Sweep(long now, long window)
    {
        foreach (var (key, source) in _sources.ToList())
        {
            if (source.Attempts.Count == 0 || now - source.Attempts.Last() >= window)
                _sources.Remove(key);
        }
    }

    private sealed class Source
    {
        public Queue<long> Attempts { get; } = new();

        public long? ReportedRefusalAt { get; set; }
    }
}

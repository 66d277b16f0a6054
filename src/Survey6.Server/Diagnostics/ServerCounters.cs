using System.Collections.Concurrent;

namespace Survey6.Server.Diagnostics;

/// <summary>
/// In-process counters (joins, refusals by reason, ...). Names are dotted, e.g.
/// <c>join.refused.expired</c>; <see cref="Metrics.ServerMetrics"/> exports them at /metrics.
/// </summary>
public sealed class ServerCounters
{
    public const string JoinAccepted = "join.accepted";
    public const string JoinRefusedPrefix = "join.refused.";
    public const string AuthenticationRefusedPrefix = "auth.refused.";
    public const string RenewRefusedPrefix = "renew.refused.";

    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

    public void Increment(string name) => Add(name, 1);

    /// <summary>Adds <paramref name="amount"/> (not negative: counters only grow), e.g. bytes received.</summary>
    public void Add(string name, long amount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        _counts.AddOrUpdate(name, amount, (_, count) => count + amount);
    }

    public long Get(string name) => _counts.TryGetValue(name, out var count) ? count : 0;

    /// <summary>Sum of every counter whose name starts with <paramref name="prefix"/>.</summary>
    public long Sum(string prefix) => _counts.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(p => p.Value);

    public IReadOnlyDictionary<string, long> Snapshot() => new SortedDictionary<string, long>(_counts, StringComparer.Ordinal);
}

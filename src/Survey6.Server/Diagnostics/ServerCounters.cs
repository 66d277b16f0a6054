using System.Collections.Concurrent;

namespace Survey6.Server.Diagnostics;

/// <summary>
/// In-process counters (joins, refusals by reason, ...). Names are dotted, e.g.
/// <c>join.refused.expired</c>; the metrics endpoint will export them later.
/// </summary>
public sealed class ServerCounters
{
    public const string JoinAccepted = "join.accepted";
    public const string JoinRefusedPrefix = "join.refused.";
    public const string AuthenticationRefusedPrefix = "auth.refused.";

    private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

    public void Increment(string name) => _counts.AddOrUpdate(name, 1, static (_, count) => count + 1);

    public void Add(string name, long amount) => _counts.AddOrUpdate(name, amount, (_, count) => count + amount);

    public long Get(string name) => _counts.TryGetValue(name, out var count) ? count : 0;

    /// <summary>Sum of every counter whose name starts with <paramref name="prefix"/>.</summary>
    public long Sum(string prefix) => _counts.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(p => p.Value);

    public IReadOnlyDictionary<string, long> Snapshot() => new SortedDictionary<string, long>(_counts, StringComparer.Ordinal);
}

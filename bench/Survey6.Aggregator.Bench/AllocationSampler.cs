using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// The runtime's allocation samples (GCAllocationTick: one event per about 100 KB allocated, naming the type that
/// crossed the mark), summed by type: where a run's allocations come from, without a profiler. On when
/// SURVEY6_BENCH_ALLOCATIONS=1.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new();

    public static AllocationSampler? FromEnvironment() =>
        Environment.GetEnvironmentVariable("SURVEY6_BENCH_ALLOCATIONS") == "1" ? new AllocationSampler() : null;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
            EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null)
            return;
        int type = e.PayloadNames!.IndexOf("TypeName");
        int amount = e.PayloadNames.IndexOf("AllocationAmount64");
        if (type < 0 || amount < 0)
            return;
        _bytes.AddOrUpdate((string)e.Payload[type]!, Convert.ToInt64(e.Payload[amount], CultureInfo.InvariantCulture), (_, b) => b + Convert.ToInt64(e.Payload[amount], CultureInfo.InvariantCulture));
    }

    public void Report(TextWriter output, int top = 25)
    {
        long total = _bytes.Values.Sum();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"allocation samples: {total / 1e6:F0} MB in all"));
        foreach (var (name, bytes) in _bytes.OrderByDescending(p => p.Value).Take(top))
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {bytes / 1e6,8:F1} MB  {bytes * 100.0 / total,5:F1} %  {name}"));
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Survey6.Ingest.Tests;

/// <summary>
/// The child-process side of the multi-process tests. The test runner never calls this; the tests
/// start <c>dotnet Survey6.Ingest.Tests.dll COMMAND CONSUMER Key=Value...</c>, where the pairs are
/// the <c>Ingest</c> configuration, so the child opens the queue the way a real host would.
/// </summary>
public static class Program
{
    /// <summary>How long a draining consumer works on each item.</summary>
    public static readonly TimeSpan WorkTime = TimeSpan.FromMilliseconds(3);

    public static async Task<int> Main(string[] args)
    {
        if (args.Length < 2)
        {
            await Console.Error.WriteLineAsync("usage: (hold|drain) CONSUMER Key=Value...");
            return 2;
        }
        var consumer = args[1];
        var settings = args.Skip(2).Select(a => a.Split('=', 2)).ToDictionary(p => p[0], p => (string?)p[1]);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        await using var services = new ServiceCollection().AddSurvey6IngestQueue(configuration).BuildServiceProvider();
        await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None);
        var queue = services.GetRequiredService<IIngestQueue>();

        switch (args[0])
        {
            case "hold":
                // Take one item and never finish it: the test kills this process mid-item.
                var lease = await queue.TryDequeueAsync(consumer, CancellationToken.None);
                Console.WriteLine(lease is null ? "EMPTY" : $"LEASED {lease.Item.Sha256} {lease.Attempt}");
                await Task.Delay(Timeout.Infinite);
                return 0;

            case "drain":
                // Warm up (first connection, JIT), then wait for GO so that every process starts
                // claiming at the same moment.
                await queue.GetStatsAsync(CancellationToken.None);
                Console.WriteLine("READY");
                if (await Console.In.ReadLineAsync() != "GO")
                {
                    return 3;
                }
                // Claim one item and hold it until told to go on: the test then knows that every
                // process held a lease at the same time, however the scheduler ran them.
                var held = await queue.TryDequeueAsync(consumer, CancellationToken.None);
                Console.WriteLine(held is null ? "HOLD none" : $"HOLD {held.Item.Sha256}");
                if (await Console.In.ReadLineAsync() != "GO")
                {
                    return 3;
                }
                for (var next = held; next is not null; next = await queue.TryDequeueAsync(consumer, CancellationToken.None))
                {
                    if (next != held)
                    {
                        await Task.Delay(WorkTime); // hold the lease a moment, as real work would
                    }
                    var acked = await queue.AckAsync(next, CancellationToken.None);
                    Console.WriteLine($"{(acked ? "GOT" : "LOST")} {next.Item.Sha256} {next.Attempt}");
                }
                Console.WriteLine("DONE");
                return 0;

            default:
                await Console.Error.WriteLineAsync($"unknown command {args[0]}");
                return 2;
        }
    }
}

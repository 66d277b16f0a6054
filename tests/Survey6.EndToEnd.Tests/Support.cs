using System.Diagnostics;
using System.Text.Json.Nodes;
using Survey6.Cli;

namespace Survey6.EndToEnd.Tests;

/// <summary>Polls a condition instead of sleeping: a loaded machine gets the time it needs, a quick one none.</summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
                Assert.Fail($"timed out after {timeout.TotalSeconds:0} s waiting for {what}" + (diagnostics is null ? "" : "\n" + diagnostics()));
            await Task.Delay(250);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string>? diagnostics = null) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what, diagnostics);
}

/// <summary>SQL over the lake through <c>survey6 query --format jsonl</c>, run in this process.</summary>
internal sealed class Lake(string dataDirectory)
{
    public List<JsonObject> Query(string sql)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var status = QueryCommand.Run(sql, "jsonl", null, dataDirectory, output, error);
        if (status == ExitCodes.NotFound)
            return []; // "the dataset … has no data yet": the aggregator has not written it so far
        Assert.True(status == 0, $"query failed: {error}\n{sql}");
        return output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
    }

    public long Scalar(string sql) => Query(sql) is [var row] ? row.First().Value?.GetValue<long>() ?? 0 : 0;

    /// <summary>The aggregator's ledger (<c>survey6 aggregate status --json</c>).</summary>
    public JsonObject Ledger()
    {
        var output = new StringWriter();
        Assert.Equal(0, AggregateCommands.Status(dataDirectory, json: true, runCount: 5, output));
        return JsonNode.Parse(output.ToString())!.AsObject();
    }
}

/// <summary>Frames written by earlier daemons of a probe, so that counters of the running one add up with the lake's.</summary>
internal sealed class ProbeBook
{
    public long PriorWritten { get; set; }

    public long PriorEvicted { get; set; }

    public bool Revoked { get; set; }

    /// <summary>Frames of captures uploaded with <c>survey6 probe upload</c> rather than by the daemon.</summary>
    public long UploadedByHand { get; set; }
}

/// <summary>What one batch of traffic from one host holds; every number was counted as it was sent.</summary>
internal sealed record Batch(string ProbeId, string Address, int UdpSize, int Udp, int PingSize, int EchoRequests, int EchoReplies, string Zone, int DnsQueries, int DnsAnswers);

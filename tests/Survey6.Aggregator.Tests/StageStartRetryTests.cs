using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Tests.Support;
using Survey6.Testbed;
using Xunit.Abstractions;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// A scheduled stage whose services cannot be built at first (here its ledger cannot be opened: a file stands where
/// its folder should be) is retried with back-off and runs once the cause is gone, in a real <c>survey6 aggregate
/// run</c>. Quartz used to build the job with the ledger and, after one failure, keep the trigger in its error state
/// for good while the process ran on.
/// </summary>
public sealed class StageStartRetryTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_stage_that_cannot_start_is_retried_and_runs_once_the_cause_is_gone()
    {
        using var w = new Workspace();
        var sha = w.Store(AggregateTests.First());
        var blocker = Path.Combine(w.Root, "ledger");
        File.WriteAllText(blocker, "not a folder");
        var ledgerPath = Path.Combine(blocker, "aggregator.db");
        var environment = new Dictionary<string, string>
        {
            ["Aggregator__LedgerPath"] = ledgerPath,
            ["Aggregator__Schedules__Parse"] = "* * * * * ?",
            ["Aggregator__Schedules__Aggregate"] = "0 0 0 1 1 ? 2099",
            ["Aggregator__Schedules__Cleanup"] = "0 0 0 1 1 ? 2099",
            ["Aggregator__StartRetryBackoff"] = "00:00:00.2",
            ["Aggregator__MaxStartRetryBackoff"] = "00:00:01",
        };
        using var worker = ChildProcess.Start("worker", ["aggregate", "run", "--data-dir", w.DataDirectory, "--source", "directory"], environment, workingDirectory: w.Root);
        try
        {
            // Failing, and saying so, more than once.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
            while (Count(worker.Output, "Stage parse could not start") < 2)
            {
                Assert.True(DateTime.UtcNow < deadline, "the stage did not report failed starts:\n" + worker.Output);
                Assert.False(worker.HasExited, worker.Output);
                await Task.Delay(100);
            }

            File.Delete(blocker);

            while (!File.Exists(ledgerPath) || new RunLedger(ledgerPath, TimeProvider.System).GetCapture(sha)?.Status != RunLedger.Parsed)
            {
                Assert.True(DateTime.UtcNow < deadline, "the stage never ran after its cause was gone:\n" + worker.Output);
                Assert.False(worker.HasExited, worker.Output);
                await Task.Delay(200);
            }
            Assert.Contains("Stage parse started on attempt", worker.Output, StringComparison.Ordinal);
            Assert.True(await worker.StopAsync(TimeSpan.FromSeconds(30)), "the worker did not stop on SIGTERM:\n" + worker.Output);
        }
        finally
        {
            output.WriteLine(worker.Output);
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        }
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
            n++;
        return n;
    }
}

using Survey6.Aggregator.Ledger;
using Survey6.Data.Views;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>The data page reads the lake and the ledger where the aggregator writes them, not only at their defaults under DATA.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class AggregatorLocationTests
{
    [Fact]
    public async Task The_pages_read_the_lake_and_the_ledger_where_the_aggregator_settings_put_them()
    {
        var root = TempDirectory.Create();
        var lake = Path.Combine(root, "big-disk", "lake");
        var ledgerPath = Path.Combine(root, "ledger", "runs.db");
        await using var server = await ServerHarness.StartAsync(root, new Dictionary<string, string?>
        {
            ["Aggregator:LakeDirectory"] = lake,
            ["Aggregator:LedgerPath"] = ledgerPath,
        });

        // The aggregator (in another process, say) records a run in its ledger at the configured place.
        var ledger = new RunLedger(ledgerPath, TimeProvider.System);
        var run = ledger.StartRun("parse");
        ledger.FinishRun(run, "succeeded", 3, 2, 1234, null);

        var view = server.Get<IPipelineViewSource>().Read();
        Assert.NotNull(view);
        Assert.Equal(run, Assert.Single(view.RecentRuns).RunId);
        Assert.Equal(lake, server.Get<IDatasetSummarySource>().LakeDirectory);
        Assert.False(File.Exists(Path.Combine(server.DataDirectory, "aggregator.db")));
    }
}

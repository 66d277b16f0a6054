using System.Net;
using Survey6.Aggregator.Ledger;
using Survey6.Server.Web;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// The data page reads the aggregator's ledger and lake through readers the hosting program registers
/// (<c>AddSurvey6AggregatorViews</c>); a server host without them still serves the page and says what it cannot show.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class AggregatorViewsTests : IDisposable
{
    private const string Password = "correct horse battery";
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Without_the_aggregator_the_data_page_renders_and_says_the_ledger_and_lake_are_not_available_here()
    {
        await using var server = await ServerHarness.StartAsync(_root, aggregatorViews: false);
        WriteLedger(server);

        var page = await DataPageAsync(server);

        Assert.Contains("id=\"no-ledger-reader\"", page, StringComparison.Ordinal);
        Assert.Contains("The aggregator's ledger is not available here", page, StringComparison.Ordinal);
        Assert.Contains("id=\"no-lake-reader\"", page, StringComparison.Ordinal);
        Assert.Contains("The lake is not available here", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"stage-parse\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"no-dataset\"", page, StringComparison.Ordinal);
        Assert.Contains("id=\"uploads-h\"", page, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_aggregator_views_the_data_page_shows_the_ledger_the_aggregator_wrote()
    {
        await using var server = await ServerHarness.StartAsync(_root);
        WriteLedger(server);

        var page = await DataPageAsync(server);

        Assert.Contains("id=\"stage-parse\"", page, StringComparison.Ordinal);
        Assert.Contains("bad block length", page, StringComparison.Ordinal);
        Assert.Contains("1,234", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"no-ledger-reader\"", page, StringComparison.Ordinal);
        Assert.DoesNotContain("id=\"no-lake-reader\"", page, StringComparison.Ordinal);
        // The reader creates nothing: the ledger stays the aggregator's file, the lake is not made.
        Assert.False(Directory.Exists(Path.Combine(server.DataDirectory, "lake")));
    }

    private static async Task<string> DataPageAsync(ServerHarness server)
    {
        server.Get<WebAdminStore>().SetPassword(Password);
        using var client = WebLogin.Client(server);
        await WebLogin.LoginAsync(client, Password);
        var response = await client.GetAsync(new Uri("/data", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private static void WriteLedger(ServerHarness server)
    {
        var ledger = new RunLedger(Path.Combine(server.DataDirectory, "aggregator.db"), TimeProvider.System);
        var parse = ledger.StartRun("parse");
        ledger.FinishRun(parse, "succeeded", 2, 1, 1234, null);
        ledger.RecordCapture(new Survey6.Aggregator.Sources.PendingCapture(new string('a', 64), "p-x", new DateOnly(2025, 3, 14), "/nowhere.pcapng", null),
            RunLedger.Quarantined, 5, "bad block length", null, null, null, parse);
        ledger.SetPartition(new DateOnly(2025, 3, 14), "fp", 1, """{"packets":1234,"dns":56}""", parse);
    }
}

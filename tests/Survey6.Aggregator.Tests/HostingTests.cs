using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Tests.Support;
using Survey6.Cli;

namespace Survey6.Aggregator.Tests;

public class HostingTests
{
    private static IHost SchedulerHost(string dataDir, string parseCron)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Aggregator:DataDirectory"] = dataDir,
            ["Aggregator:Schedules:Parse"] = parseCron,
            ["Aggregator:Schedules:Aggregate"] = "0 0 0 1 1 ? 2099",
            ["Aggregator:Schedules:Cleanup"] = "0 0 0 1 1 ? 2099",
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSurvey6Aggregator(builder.Configuration);
        builder.Services.AddSurvey6AggregatorScheduling(builder.Configuration);
        return builder.Build();
    }

    [Fact]
    public async Task The_scheduler_runs_stages_on_their_cron_and_keeps_its_triggers_in_sqlite()
    {
        using var w = new Workspace();
        w.Store(AggregateTests.First());
        using (var host = SchedulerHost(w.DataDirectory, "* * * * * ?"))
        {
            await host.StartAsync();
            var ledger = host.Services.GetRequiredService<RunLedger>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (ledger.CaptureCounts()[RunLedger.Parsed] == 0 && DateTime.UtcNow < deadline)
                await Task.Delay(200);
            await host.StopAsync();
            Assert.Equal(1, ledger.CaptureCounts()[RunLedger.Parsed]);
            Assert.Contains(ledger.RecentRuns(50), r => r.Stage == "parse" && r.Status == "succeeded");
        }

        var store = Path.Combine(w.DataDirectory, "aggregator-scheduler.db");
        using var connection = new SqliteConnection($"Data Source={store};Pooling=false");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM QRTZ_CRON_TRIGGERS";
        Assert.Equal(3L, (long)command.ExecuteScalar()!);
    }

    [Fact]
    public void A_bad_cron_expression_fails_at_start()
    {
        using var w = new Workspace();
        using var host = SchedulerHost(w.DataDirectory, "every minute please");
        var e = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<AggregatorOptions>>().Value);
        Assert.Contains("Schedules:Parse", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cli_runs_stages_reports_status_and_queries_the_lake()
    {
        using var w = new Workspace();
        w.Store(AggregateTests.First());
        w.Store(AggregateTests.Second());
        w.Store(System.Text.Encoding.ASCII.GetBytes("not a capture"));

        var output = new StringWriter();
        Assert.Equal(0, await AggregateCommands.OnceAsync("all", w.DataDirectory, null, includeOpen: false, output, CancellationToken.None));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["cleanup", "parse", "aggregate"], lines.Select(l => l[..l.IndexOf(':', StringComparison.Ordinal)]));
        Assert.All(lines, l => Assert.Contains(": succeeded", l, StringComparison.Ordinal));

        output = new StringWriter();
        Assert.Equal(0, AggregateCommands.Status(w.DataDirectory, json: true, 10, output));
        using (var status = JsonDocument.Parse(output.ToString()))
        {
            Assert.Equal(2, status.RootElement.GetProperty("captures").GetProperty("parsed").GetInt64());
            Assert.Equal(1, status.RootElement.GetProperty("captures").GetProperty("quarantined").GetInt64());
            Assert.StartsWith("unreadable capture", status.RootElement.GetProperty("quarantined")[0].GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.Equal(3, status.RootElement.GetProperty("runs").GetArrayLength());
        }

        output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, QueryCommand.Run("SELECT flow_src, packets FROM flows WHERE tcp_flags = 19", "csv", null, w.DataDirectory, output, error));
        Assert.Equal("flow_src,packets\n2001:db8:1::1,4\n", output.ToString().ReplaceLineEndings("\n"));

        output = new StringWriter();
        Assert.Equal(0, QueryCommand.Run("SELECT date, qname, aaaa FROM dns WHERE rcode = 0", "jsonl", Path.Combine(w.DataDirectory, "lake"), null, output, error));
        using (var line = JsonDocument.Parse(output.ToString()))
        {
            Assert.Equal("2024-05-01", line.RootElement.GetProperty("date").GetString());
            Assert.Equal(2, line.RootElement.GetProperty("aaaa").GetArrayLength());
        }

        output = new StringWriter();
        Assert.Equal(0, QueryCommand.Run("SELECT ipv6_prefix(address, 48) AS p, ipv6_mac(address) AS mac FROM addresses WHERE mac IS NOT NULL", "table", null, w.DataDirectory, output, error));
        Assert.Contains("2001:db8:2::/48 | 00:11:22:33:44:55", output.ToString(), StringComparison.Ordinal);

        Assert.Equal(ExitCodes.NotFound, QueryCommand.Run("SELECT * FROM no_such_dataset", "table", null, w.DataDirectory, new StringWriter(), error));
        Assert.Contains("no_such_dataset", error.ToString(), StringComparison.Ordinal);
    }
}

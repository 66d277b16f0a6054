using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator;
using Survey6.Aggregator.Ledger;
using Survey6.Ingest;

namespace Survey6.Cli;

/// <summary><c>survey6 aggregate ...</c>: turn stored captures into the Parquet lake.</summary>
public static class AggregateCommands
{
    /// <summary>A stage failed.</summary>
    public const int ExitFailed = ExitCodes.Failed;

    /// <summary>Another run held the stage lock for all of <c>Aggregator:LockWait</c>.</summary>
    public const int ExitBusy = ExitCodes.Conflict;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var config = ConfigOption();
        config.Recursive = true;
        var aggregate = new Command("aggregate", "Turn stored captures into Parquet datasets (parse, aggregate, cleanup)") { config };
        aggregate.Subcommands.Add(CreateOnce(config));
        aggregate.Subcommands.Add(CreateRun(config));
        aggregate.Subcommands.Add(CreateStatus(config));
        aggregate.Subcommands.Add(CreateRebuild(config));
        return aggregate;
    }

    internal static Option<string?> DataDirOption() => new("--data-dir") { Description = "C&C data folder holding captures/ (default: Aggregator:DataDirectory, else ./data)" };

    internal static Option<string?> ConfigOption() => new("--config")
    {
        Description = "JSON configuration file (sections Aggregator, Ingest; default: appsettings.json in the working folder, if there is one)",
    };

    internal static Option<string?> LakeOption() => new("--lake") { Description = "Lake folder (default: Aggregator:LakeDirectory, else DATA/lake)" };

    private static Command CreateOnce(Option<string?> config)
    {
        var stage = new Option<string>("--stage") { Description = "Stage to run", DefaultValueFactory = _ => "all" };
        stage.AcceptOnlyFromAmong("parse", "aggregate", "cleanup", "all");
        var dataDir = DataDirOption();
        var lake = LakeOption();
        var includeOpen = new Option<bool>("--include-open") { Description = "Aggregate dates that are not closed yet (today, or within the grace period)" };
        var source = new Option<string>("--source")
        {
            Description = "Where parse takes captures: queue (drain the ingest queue), directory (scan DATA/captures), " +
                "auto (the queue when Ingest:Kind is redis or DATA/ingest.db exists, else the scan)",
            DefaultValueFactory = _ => "auto",
        };
        source.AcceptOnlyFromAmong("auto", "queue", "directory");
        var command = new Command("once", $"Run stages once and exit (status {ExitFailed} when a stage failed, {ExitBusy} when another run held the lock)") { stage, dataDir, lake, includeOpen, source };
        command.SetAction((parse, ct) =>
        {
            AsDataOwner(parse, parse.GetValue(dataDir), parse.GetValue(config));
            return OnceAsync(parse.GetValue(stage)!, parse.GetValue(dataDir), parse.GetValue(lake), parse.GetValue(includeOpen), Console.Out, ct, parse.GetValue(source)!, parse.GetValue(config));
        });
        return command;
    }

    private static Command CreateRun(Option<string?> config)
    {
        var dataDir = DataDirOption();
        var lake = LakeOption();
        var source = new Option<string>("--source") { Description = "Where parse takes captures: queue (the ingest queue, section Ingest) or directory (scan DATA/captures)", DefaultValueFactory = _ => "queue" };
        source.AcceptOnlyFromAmong("queue", "directory");
        var worker = new Option<string?>("--worker-name") { Description = "This worker's name (default: host name); workers sharing a data folder on one host need distinct names" };
        var command = new Command("run", "Run the stages on their cron schedules (Aggregator:Schedules) until stopped; parse takes captures from the ingest queue") { dataDir, lake, source, worker };
        command.SetAction(async (parse, ct) =>
        {
            var kind = Enum.Parse<CaptureSourceKind>(parse.GetValue(source)!, ignoreCase: true);
            AsDataOwner(parse, parse.GetValue(dataDir), parse.GetValue(config));
            try
            {
                using var host = AggregatorHosting.Build(parse.GetValue(dataDir), parse.GetValue(lake), includeOpen: false, scheduled: true, LogLevel.Information, kind, parse.GetValue(worker), parse.GetValue(config));
                // A PostgreSQL ledger is checked (reached, migrated) before the daemon starts, so a wrong host or password
                // stops it with one clear line instead of a stage retrying in the log.
                if (host.Services.GetRequiredService<IOptions<AggregatorOptions>>().Value.Ledger.IsPostgres)
                    _ = host.Services.GetRequiredService<IRunLedger>();
                await host.RunAsync(ct).ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is OptionsValidationException or InvalidOperationException or IOException or StackExchange.Redis.RedisConnectionException)
            {
                Console.Error.WriteLine("survey6 aggregate run: " + e.Message);
                return ExitFailed;
            }
        });
        return command;
    }

    private static Command CreateRebuild(Option<string?> config)
    {
        var date = new Option<DateOnly>("--date") { Description = "The date (UTC, yyyy-MM-dd) whose datasets are rebuilt from its packets", Required = true };
        var dataDir = DataDirOption();
        var lake = LakeOption();
        var command = new Command("rebuild", "Rebuild one date's datasets from its packets files, recomputing every partial aggregate (status 1 on failure, 3 when another run held the lock)") { date, dataDir, lake };
        command.SetAction(async (parse, ct) =>
        {
            AsDataOwner(parse, parse.GetValue(dataDir), parse.GetValue(config));
            using var host = AggregatorHosting.Build(parse.GetValue(dataDir), parse.GetValue(lake), includeOpen: false, scheduled: false, LogLevel.Information, CaptureSourceKind.Directory,
                configFile: parse.GetValue(config));
            var runner = host.Services.GetRequiredService<AggregatorRunner>();
            var wait = host.Services.GetRequiredService<IOptions<AggregatorOptions>>().Value.LockWait;
            var report = await runner.RebuildAsync(parse.GetValue(date), wait, ct).ConfigureAwait(false);
            if (report is null)
            {
                Console.Out.WriteLine("another aggregator run holds the lock; nothing done");
                return ExitBusy;
            }
            Console.Out.WriteLine($"rebuild: {report.Status} (run {report.RunId}, {report.Duration.TotalSeconds:F1} s): " +
                $"{report.Inputs} inputs, {report.Outputs} outputs, {report.Rows} rows{(report.Error is null ? "" : ", error: " + report.Error)}");
            return report.Succeeded ? 0 : ExitFailed;
        });
        return command;
    }

    private static Command CreateStatus(Option<string?> config)
    {
        var dataDir = DataDirOption();
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var runs = new Option<int>("--runs") { Description = "How many recent runs to list", DefaultValueFactory = _ => 10 };
        var command = new Command("status", "Show capture states, quarantined captures, aggregated dates and recent runs from the ledger") { dataDir, json, runs };
        command.SetAction(parse =>
        {
            if (parse.GetValue(runs) < 1)
                throw new CliException(ExitCodes.Usage, $"--runs {parse.GetValue(runs)}: expected a count of runs, 1 or more");
            AsDataOwner(parse, parse.GetValue(dataDir), parse.GetValue(config));
            return Status(parse.GetValue(dataDir), parse.GetValue(json), parse.GetValue(runs), Console.Out, parse.GetValue(config));
        });
        return command;
    }

    /// <summary>
    /// Root working on a data folder the C&amp;C's user owns works as that user, so the server can go on writing the lake and ledger.
    /// A missing data folder (a mistyped --data-dir, or no ./data where the command runs) is an error, never created.</summary>
    private static void AsDataOwner(ParseResult parse, string? dataDir, string? configFile)
    {
        var directory = Path.GetFullPath(AggregatorHosting.DataDirectory(dataDir, configFile));
        CliPaths.RequireDirectory(directory, dataDir is null ? "the data folder (Aggregator:DataDirectory, else ./data)" : "--data-dir");
        DirectoryOwner.Become(directory, parse);
    }

    public static async Task<int> OnceAsync(string stage, string? dataDir, string? lakeDir, bool includeOpen, TextWriter output, CancellationToken ct, string source = "auto",
        string? configFile = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        var kind = source == "auto" ? AggregatorHosting.ResolveAuto(dataDir, configFile) : Enum.Parse<CaptureSourceKind>(source, ignoreCase: true);
        using var host = AggregatorHosting.Build(dataDir, lakeDir, includeOpen, scheduled: false, LogLevel.Information, kind, configFile: configFile);
        var runner = host.Services.GetRequiredService<AggregatorRunner>();
        var wait = host.Services.GetRequiredService<IOptions<AggregatorOptions>>().Value.LockWait;
        IReadOnlyList<StageReport?> reports = stage == "all"
            ? await runner.RunAllAsync(wait, ct).ConfigureAwait(false)
            : [await runner.RunAsync(Enum.Parse<AggregatorStage>(stage, ignoreCase: true), wait, ct).ConfigureAwait(false)];
        int status = 0;
        foreach (var report in reports)
        {
            if (report is { RunId: AggregatorRunner.NoRun })
            {
                output.WriteLine($"{report.Stage.ToString().ToLowerInvariant()}: nothing queued");
                continue;
            }
            if (report is null)
            {
                output.WriteLine("another aggregator run holds the lock; nothing done");
                return ExitBusy;
            }
            output.WriteLine($"{report.Stage.ToString().ToLowerInvariant()}: {report.Status} (run {report.RunId}, {report.Duration.TotalSeconds:F1} s): " +
                $"{report.Inputs} inputs, {report.Outputs} outputs, {report.Rows} rows{(report.Error is null ? "" : ", error: " + report.Error)}");
            if (!report.Succeeded)
                status = ExitFailed;
        }
        return status;
    }

    private sealed record QueueSnapshot(IngestQueueStats? Stats, IReadOnlyList<DeadLetter> DeadLetters, string? Error);

    /// <summary>The ingest queue's counts and oldest dead letters; an unreachable queue is reported, not fatal.</summary>
    private static QueueSnapshot QueueState(IServiceProvider services)
    {
        try
        {
            var queue = services.GetRequiredService<IIngestQueue>();
            var stats = queue.GetStatsAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            var dead = queue.GetDeadLettersAsync(20, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            return new QueueSnapshot(stats, dead, null);
        }
        catch (Exception e) when (e is OptionsValidationException or StackExchange.Redis.RedisException or Microsoft.Data.Sqlite.SqliteException or IOException)
        {
            return new QueueSnapshot(null, [], e.Message);
        }
    }

    public static int Status(string? dataDir, bool json, int runCount, TextWriter output, string? configFile = null)
    {
        var source = AggregatorHosting.ResolveAuto(dataDir, configFile);
        using var host = AggregatorHosting.Build(dataDir, null, includeOpen: false, scheduled: false, LogLevel.Warning, source, configFile: configFile);
        var ledger = host.Services.GetRequiredService<IRunLedger>();
        var queue = source == CaptureSourceKind.Queue ? QueueState(host.Services) : null;
        var counts = ledger.CaptureCounts();
        var quarantined = ledger.Captures(RunLedger.Quarantined);
        var failed = ledger.Captures(RunLedger.Failed);
        var partitions = ledger.Partitions();
        var runs = ledger.RecentRuns(runCount);
        if (json)
        {
            var document = new
            {
                ledger = ledger.Location,
                queue = queue is null ? null : (object)(queue.Error is { } queueError ? new { error = queueError } : new
                {
                    pending = queue.Stats!.Pending,
                    in_flight = queue.Stats.InFlight,
                    dead_lettered = queue.Stats.DeadLettered,
                    oldest_pending_age_seconds = queue.Stats.OldestPendingAge?.TotalSeconds,
                    dead_letters = queue.DeadLetters.Select(d => new { sha256 = d.Item.Sha256, probe_id = d.Item.ProbeId, attempts = d.Attempts, reason = d.Reason, dead_lettered_at = d.DeadLetteredAt }),
                }),
                captures = counts,
                quarantined = quarantined.Select(c => new { sha256 = c.Sha256, probe_id = c.ProbeId, date = c.Date, attempts = c.Attempts, reason = c.Reason }),
                failed = failed.Select(c => new { sha256 = c.Sha256, probe_id = c.ProbeId, date = c.Date, attempts = c.Attempts, reason = c.Reason, next_attempt_at = c.NextAttemptAt }),
                partitions = partitions.Select(p => new { date = p.Date, inputs = p.Inputs, rows = JsonDocument.Parse(p.RowsJson).RootElement, built_at = p.BuiltAt, run_id = p.RunId }),
                runs = runs.Select(r => new
                {
                    run_id = r.RunId, stage = r.Stage, status = r.Status, started_at = r.StartedAt, duration_ms = r.DurationMs,
                    inputs = r.Inputs, outputs = r.Outputs, rows = r.Rows, error = r.Error,
                }),
            };
            output.WriteLine(JsonSerializer.Serialize(document, Indented));
            return 0;
        }

        output.WriteLine($"ledger: {ledger.Location}");
        if (queue?.Error is { } error)
            output.WriteLine("ingest queue: unavailable: " + error);
        else if (queue?.Stats is { } stats)
        {
            output.WriteLine($"ingest queue: {stats.Pending} pending, {stats.InFlight} in flight, {stats.DeadLettered} dead-lettered" +
                (stats.OldestPendingAge is { } age ? $", oldest pending {age.TotalSeconds:F0} s" : ""));
            foreach (var d in queue.DeadLetters)
                output.WriteLine($"  dead letter {d.Item.Sha256} probe {d.Item.ProbeId} after {d.Attempts} attempts: {d.Reason}");
        }
        output.WriteLine("captures: " + string.Join(", ", counts.Select(kv => $"{kv.Value} {kv.Key}")));
        foreach (var c in quarantined)
            output.WriteLine($"  quarantined {c.Sha256} probe {c.ProbeId} {c.Date:yyyy-MM-dd}: {c.Reason}");
        foreach (var c in failed)
            output.WriteLine($"  failed {c.Sha256} probe {c.ProbeId} attempt {c.Attempts}, next {c.NextAttemptAt:u}: {c.Reason}");
        output.WriteLine($"aggregated dates: {partitions.Count}");
        foreach (var p in partitions)
            output.WriteLine($"  {p.Date:yyyy-MM-dd}: {p.Inputs} packets files, built {p.BuiltAt:u} by run {p.RunId}");
        output.WriteLine("recent runs:");
        foreach (var r in runs)
            output.WriteLine($"  {r.StartedAt:u} {r.Stage,-9} {r.Status,-9} {r.DurationMs,8} ms  in {r.Inputs} out {r.Outputs} rows {r.Rows}{(r.Error is null ? "" : "  " + r.Error)}");
        return 0;
    }
}

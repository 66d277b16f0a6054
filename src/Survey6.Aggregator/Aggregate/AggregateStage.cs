using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DuckDB.NET.Data;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// Stage <c>aggregate</c>: for each closed date whose captures changed since it was last built, computes the partial
/// aggregates of the captures that are new (or whose duplicate check changed because an overlapping capture arrived),
/// then merges every current partial of the date into each dataset's partition, written into <c>LAKE/.staging</c>
/// and swapped into place. A partition is thus replaced whole or not at all, a run reads only new packets, and
/// incremental runs and a rebuild from the same packets give the same rows (docs/datasets.md, "Incremental design").
/// </summary>
public sealed class AggregateStage(IRunLedger ledger, IOptions<AggregatorOptions> options, TimeProvider time, ILogger<AggregateStage> logger)
{
    private readonly AggregatorOptions _options = options.Value;

    public Task RunAsync(StageRun run, CancellationToken ct) => RunAsync(run, rebuild: null, ct);

    /// <summary>
    /// With <paramref name="rebuild"/>, only that date, from its packets: its partials are dropped and recomputed and
    /// its datasets written even when nothing changed (and even when it is not closed yet).
    /// </summary>
    public Task RunAsync(StageRun run, DateOnly? rebuild, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(run);
        var lake = new LakeLayout(_options.Layout.Lake);
        // Leftovers of a crashed build are never read, but they take space; this run starts clean.
        var staging = Path.Combine(lake.Staging, "aggregate");
        if (Directory.Exists(staging))
            Directory.Delete(staging, recursive: true);
        string? keyId;
        using (var anonymiser = AnonymisationKey.FromOptions(_options))
            keyId = anonymiser?.KeyId;
        var mismatched = new List<string>();

        var dates = rebuild is { } only ? (lake.PacketDates().Contains(only) ? [only] : []) : lake.PacketDates();
        if (rebuild is { } missing && dates.Count == 0)
            throw new InvalidOperationException($"No packets for {missing.ToString(LakeLayout.DateFormat, CultureInfo.InvariantCulture)}: nothing to rebuild.");
        foreach (var date in dates)
        {
            ct.ThrowIfCancellationRequested();
            var dateText = date.ToString(LakeLayout.DateFormat, CultureInfo.InvariantCulture);
            if (rebuild is null && !_options.IncludeOpenPartitions && !IsClosed(date))
            {
                Log.PartitionOpen(logger, dateText);
                continue;
            }
            var inputs = PacketFiles(lake, date);
            if (inputs.Count == 0)
                continue;
            // From names alone, so that an unchanged date costs two directory listings, not a read of its captures rows.
            var fingerprint = Fingerprint(lake, inputs, CaptureFiles(lake, date), ConnectionPartials.SettingsTag(_options.Connections));
            var state = ledger.GetPartition(date);
            if (rebuild is null && state is not null && state.Fingerprint == fingerprint
                && LakeLayout.AggregateDatasets.All(d => lake.HasPartition(d, date)))
            {
                Log.PartitionUnchanged(logger, dateText);
                continue;
            }
            if (KeyMismatch(lake, date, keyId) is { } problem)
            {
                // Mixing anonymised and raw (or differently keyed) addresses would give joins that mean nothing.
                Log.PartitionKeyMismatch(logger, dateText, problem);
                mismatched.Add(dateText + ": " + problem);
                continue;
            }
            if (rebuild is not null && Directory.Exists(lake.PartialsPartition(date)))
                Directory.Delete(lake.PartialsPartition(date), recursive: true);
            var spans = CaptureSpans(lake, date);
            var plan = PartialPlan.For(inputs, spans, ConnectionPartials.SettingsTag(_options.Connections));
            var step = new StepTimer(logger, dateText);
            int computed;
            SortedDictionary<string, long> rows;
            try
            {
                computed = UpdatePartials(lake, date, plan, keyId, run, ct);
                step.Done("partials");
                var neighbours = ConnectionPartials.Neighbours(
                    plan.Select(p => (p.Sha256, p.Probe, p.FromNs, p.ToNs)), _options.Connections);
                rows = Merge(lake, date, keyId, MergeCaptures(lake, date, plan, neighbours), neighbours, fresh: rebuild is not null, run, step, ct);
            }
            catch (Exception e) when (IsDuckDbOutOfMemory(e))
            {
                throw new InvalidOperationException(OutOfMemoryMessage(dateText, e.Message), e);
            }
            ledger.SetPartition(date, fingerprint, inputs.Count, JsonSerializer.Serialize(rows), run.RunId);
            long total = rows.Values.Sum();
            Log.PartitionBuilt(logger, dateText, computed, total);
        }
        if (mismatched.Count > 0)
            throw new InvalidOperationException("Not aggregated, packets files disagree with Aggregator:Anonymisation (to re-parse, remove the lake and the ledger): " + string.Join("; ", mismatched));
        return Task.CompletedTask;
    }

    /// <summary>
    /// Computes the partials the plan names that do not exist yet, each from its capture's packets alone (plus the
    /// duplicate keys of the earlier overlapping captures), and removes partials the plan no longer names. Returns
    /// how many captures were read.
    /// </summary>
    private int UpdatePartials(LakeLayout lake, DateOnly date, IReadOnlyList<PlannedPartial> plan, string? keyId, StageRun run, CancellationToken ct)
    {
        var keyValues = KeyValues(keyId);
        var partition = lake.PartialsPartition(date);
        var wanted = new HashSet<string>(plan.Select(p => Path.Combine(partition, p.Probe, p.Name)), StringComparer.Ordinal);
        int computed = 0;
        DuckDBConnection? connection = null;
        using var connections = new ConnectionPartials(_options, logger);
        try
        {
            foreach (var item in plan)
            {
                ct.ThrowIfCancellationRequested();
                var target = Path.Combine(partition, item.Probe, item.Name);
                if (Directory.Exists(target))
                    continue;
                connection ??= OpenDuckDb(lake, _options);
                var staged = Path.Combine(lake.Staging, "aggregate", run.RunId, "partials", item.Probe, item.Name);
                Directory.CreateDirectory(staged);
                Execute(connection, AggregateSql.CapturePackets(item.PacketsFile, item.EarlierFiles, item.FromNs, item.ToNs), ct);
                foreach (var name in AggregateSql.Partials)
                {
                    var file = Path.Combine(staged, name + ".parquet");
                    Execute(connection, $"COPY ({AggregateSql.Partial(name)}) TO {AggregateSql.Quote(file)} (FORMAT parquet, COMPRESSION zstd{keyValues})", ct);
                    Flush(file);
                }
                MergeUnits.WriteHours(Path.Combine(staged, FlowHoursName), MergeUnits.HoursIn(connection, Path.Combine(staged, AggregateSql.FlowsPartial + ".parquet"), "h"));
                connections.Write(connection, lake, item.PacketsFile, item.Sha256, date, staged, keyId, ct);
                Flush(Path.Combine(staged, ConnectionPartials.PartialName + ".parquet"));
                ConnectionPartials.WriteHours(connection, staged);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                Directory.Move(staged, target);
                DurableFiles.TrySyncDirectory(Path.GetDirectoryName(target)!);
                run.Input(item.PacketsFile);
                computed++;
            }
        }
        finally
        {
            connection?.Dispose();
        }
        if (Directory.Exists(partition))
        {
            // Partials of captures that are gone, or whose duplicate check changed: they would be counted twice.
            foreach (var probe in Directory.EnumerateDirectories(partition))
            {
                foreach (var stale in Directory.EnumerateDirectories(probe).Where(d => !wanted.Contains(d)).ToList())
                    Directory.Delete(stale, recursive: true);
            }
        }
        return computed;
    }

    /// <summary>The first and last frame time of each capture of the date, from its captures row.</summary>
    private static Dictionary<string, CaptureSpan> CaptureSpans(LakeLayout lake, DateOnly date)
    {
        var spans = new Dictionary<string, CaptureSpan>(StringComparer.Ordinal);
        if (CaptureFiles(lake, date).Count == 0)
            return spans;
        var glob = Path.Combine(lake.DatePartition(LakeLayout.Captures, date), "*", "*.parquet");
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT capture_sha256, first_time_ns, last_time_ns FROM read_parquet({AggregateSql.Quote(glob)}, hive_partitioning = false, union_by_name = true)";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            spans[reader.GetString(0)] = new CaptureSpan(
                reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));
        }
        return spans;
    }

    /// <summary>A date is closed once the grace period after its end has passed.</summary>
    public bool IsClosed(DateOnly date)
    {
        var end = new DateTimeOffset(date.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        return time.GetUtcNow() >= end + _options.PartitionGrace;
    }

    /// <summary>
    /// Null when every packets file of the date was written with the configured anonymisation key (or all without one
    /// when anonymisation is off); else what differs.
    /// </summary>
    private string? KeyMismatch(LakeLayout lake, DateOnly date, string? keyId)
    {
        var glob = AggregateSql.Quote(Path.Combine(lake.DatePartition(LakeLayout.Packets, date), "*", "*.parquet"));
        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT k, count(*) FROM (
                SELECT f.file_name, m.k
                FROM (SELECT DISTINCT file_name FROM parquet_file_metadata({glob})) f
                LEFT JOIN (SELECT file_name, decode(value) AS k FROM parquet_kv_metadata({glob})
                           WHERE decode(key) = {AggregateSql.Quote(AnonymisationMetadata.KeyIdKey)}) m USING (file_name))
            GROUP BY k ORDER BY k NULLS FIRST
            """;
        using var reader = command.ExecuteReader();
        var problems = new List<string>();
        while (reader.Read())
        {
            var found = reader.IsDBNull(0) ? null : reader.GetString(0);
            if (found != keyId)
                problems.Add($"{reader.GetInt64(1)} files {(found is null ? "not anonymised" : "anonymised with key " + found)}");
        }
        return problems.Count == 0 ? null : string.Join(", ", problems) + (keyId is null ? " while anonymisation is off" : " while the key is " + keyId);
    }

    /// <summary>The date's captures as the connections merge reads them: partial file and neighbours.</summary>
    private static List<MergeCapture> MergeCaptures(LakeLayout lake, DateOnly date, IReadOnlyList<PlannedPartial> plan, IReadOnlyDictionary<string, (bool Earlier, bool Later)> neighbours) =>
        plan.Select(p =>
        {
            var (earlier, later) = neighbours.GetValueOrDefault(p.Sha256);
            return new MergeCapture(p.Sha256, p.Probe["probe=".Length..], Path.Combine(lake.PartialsPartition(date), p.Probe, p.Name), p.Name, earlier, later);
        }).ToList();

    /// <summary>
    /// Merges the date's datasets from its partials and swaps each in. With <paramref name="fresh"/> (a rebuild) every
    /// unit is written from the partials; otherwise units whose inputs did not change are carried over.
    /// </summary>
    private SortedDictionary<string, long> Merge(LakeLayout lake, DateOnly date, string? keyId, IReadOnlyList<MergeCapture> captures, IReadOnlyDictionary<string, (bool Earlier, bool Later)> neighbours, bool fresh, StageRun run, StepTimer step, CancellationToken ct)
    {
        var staged = Path.Combine(lake.Staging, "aggregate", run.RunId, LakeLayout.DatePart(date));
        Directory.CreateDirectory(staged);
        var rows = new SortedDictionary<string, long>(StringComparer.Ordinal);
        string Partials(string name) => Path.Combine(lake.PartialsPartition(date), "*", "*", name + ".parquet");
        try
        {
            using (var connection = OpenDuckDb(lake, _options))
            {
                // The merged states first, while DuckDB's memory holds nothing else: the address table and the stitched
                // connections are temporary tables that stay in it until their last reader.
                foreach (var state in new[] { AggregateSql.DnsState, AggregateSql.Icmpv6State })
                {
                    WriteState(connection, state, lake.MergedPartials(date), Path.Combine(staged, MergedState), captures, fresh, keyId, ct);
                    step.Done(state.Partial + " state");
                }
                Execute(connection, AggregateSql.AddressTable(Partials(AggregateSql.AddressesPartial), keyId is not null), ct);
                step.Done("address table");
                var keyValues = KeyValues(keyId);
                var capturesGlob = Path.Combine(lake.DatePartition(LakeLayout.Captures, date), "*", "*.parquet");
                ConnectionPartials.Stitch(connection, captures, neighbours, _options.Connections, ct);
                step.Done("stitch");
                foreach (var dataset in LakeLayout.AggregateDatasets)
                {
                    ct.ThrowIfCancellationRequested();
                    var folder = Path.Combine(staged, dataset);
                    Directory.CreateDirectory(folder);
                    if (dataset == LakeLayout.Flows)
                    {
                        rows[dataset] = WriteFlowUnits(connection, date, captures, fresh ? null : lake.DatePartition(dataset, date), folder, keyId, keyValues, ct);
                        step.Done(dataset);
                        continue;
                    }
                    if (dataset == LakeLayout.Connections)
                    {
                        // Merge units below the date: only the hours that new captures touch are written (docs/datasets.md).
                        var salt = $"{UnitSalt(keyId)}/{ConnectionPartials.SettingsTag(_options.Connections)}";
                        rows[dataset] = ConnectionPartials.WriteUnits(connection, captures, fresh ? null : lake.DatePartition(dataset, date), folder, salt, keyId is not null, keyValues, ct);
                        step.Done(dataset);
                        continue;
                    }
                    string Query() => dataset switch
                    {
                        LakeLayout.Addresses => AggregateSql.Addresses,
                        LakeLayout.Prefixes => AggregateSql.Prefixes,
                        LakeLayout.Icmpv6 => AggregateSql.Icmpv6(Path.Combine(staged, MergedState)),
                        LakeLayout.Icmpv6Routers => AggregateSql.Icmpv6Routers(Partials(AggregateSql.RoutersPartial)),
                        LakeLayout.Summary => AggregateSql.Summary(capturesGlob, Partials(AggregateSql.SummaryPartial)),
                        _ => throw new InvalidOperationException("unknown dataset " + dataset),
                    };
                    try
                    {
                        rows[dataset] = dataset == LakeLayout.Dns
                            ? WriteDns(connection, Path.Combine(staged, MergedState), folder, keyValues, ct)
                            : MergeUnits.Write(connection, Query(), Path.Combine(folder, LakeLayout.PartitionFile), keyValues, ct);
                        // Temporary tables live in DuckDB's memory: dropped once read for the last time, so that the
                        // datasets after have it.
                        if (AggregateSql.LastReaderOf(dataset) is { } table)
                            Execute(connection, $"DROP TABLE IF EXISTS {table}", ct);
                        step.Done(dataset);
                    }
                    catch (DuckDBException e)
                    {
                        // DuckDB's message does not say which of the date's datasets it was writing; the operator needs to.
                        throw new InvalidOperationException($"writing {dataset} of {date:yyyy-MM-dd}: {e.Message}", e);
                    }
                }
            }

            // After the datasets: a state newer than the dataset built from it is harmless (the next merge adds nothing to it).
            DurableFiles.ReplaceDirectory(Path.Combine(staged, MergedState), lake.MergedPartials(date));
            foreach (var dataset in LakeLayout.AggregateDatasets)
            {
                var folder = Path.Combine(staged, dataset);
                foreach (var file in Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories))
                    Flush(file);
                var target = lake.DatePartition(dataset, date);
                DurableFiles.ReplaceDirectory(folder, target);
                var single = Path.Combine(target, LakeLayout.PartitionFile);
                run.Output(LakeLayout.HasProbeFolders(dataset) || !File.Exists(single) ? target : single, rows[dataset]);
            }
            step.Done("swap");
        }
        finally
        {
            var runFolder = Path.Combine(lake.Staging, "aggregate", run.RunId);
            if (Directory.Exists(runFolder))
                Directory.Delete(runFolder, recursive: true);
        }
        return rows;
    }

    /// <summary>
    /// The date's <c>dns</c> from its merged state in <paramref name="stateFolder"/>, in as many files as its names need
    /// (<see cref="AggregatorOptions.ResolvedDnsNamesPerFile"/>), each sorted on its own; returns the rows written.
    /// </summary>
    private long WriteDns(DuckDBConnection connection, string stateFolder, string folder, string keyValues, CancellationToken ct)
    {
        var keys = MergeUnits.Rows(connection, [AggregateSql.DnsState.KeysFile(stateFolder)]);
        var parts = AggregateSql.DnsFiles(keys, _options.ResolvedDnsNamesPerFile);
        long rows = 0;
        for (int part = 0; part < parts; part++)
            rows += MergeUnits.Write(connection, AggregateSql.Dns(stateFolder, part, parts), Path.Combine(folder, LakeLayout.PartFile(part, parts)), keyValues, ct);
        return rows;
    }

    /// <summary>Beside a capture's flows partial: the hours it has rows in (<see cref="MergeUnits.WriteHours"/>).</summary>
    private const string FlowHoursName = AggregateSql.FlowsPartial + ".hours";

    /// <summary>
    /// What a merged file made from partials depends on besides them: the dataset and partial formats and the
    /// anonymisation key. Part of a unit's name and of its footer (<see cref="MergeUnits.FooterValue"/>).
    /// </summary>
    private static string UnitSalt(string? keyId) => $"{AggregateSql.DatasetFormat}/{AggregateSql.PartialFormat}/{keyId}";

    /// <summary>
    /// <c>flows</c> as one merge unit per probe and UTC hour (its rows are keyed by probe and hour):
    /// <c>probe=P/YYYY-MM-DDTHH.UNIT.parquet</c>, so that a run writes again only the hours of the probes that got new
    /// captures, and a day's cost follows its new captures rather than its flows so far. A unit's inputs are the probe's
    /// captures with rows in its hour (<see cref="FlowHoursName"/>), and its footer lists them
    /// (<see cref="MergeUnits.FooterKey"/>); when the hour's earlier file merged a subset of the current ones under the
    /// same settings, the new file is that file plus the added partials. Otherwise (a partial was recomputed or
    /// removed) it merges them all.
    /// </summary>
    private static long WriteFlowUnits(DuckDBConnection db, DateOnly date, IReadOnlyList<MergeCapture> captures, string? current, string staged, string? keyId, string keyValues, CancellationToken ct)
    {
        long rows = 0;
        var carried = new List<string>();
        var salt = UnitSalt(keyId);
        var units = captures
            .SelectMany(c => MergeUnits.ReadHours(Path.Combine(c.Folder, FlowHoursName)).Select(h => (c.ProbeId, Hour: h, Capture: c)))
            .GroupBy(u => (u.ProbeId, u.Hour))
            .OrderBy(g => g.Key.ProbeId, StringComparer.Ordinal).ThenBy(g => g.Key.Hour);
        foreach (var unit in units)
        {
            ct.ThrowIfCancellationRequested();
            var (probe, hour) = unit.Key;
            // Flows of frames with no time at all (neither a timestamp nor a capture window) have no hour: one unit named by the date.
            var span = hour is { } h ? MergeUnits.HourSpan(h) : date.ToString(LakeLayout.DateFormat, CultureInfo.InvariantCulture);
            var inputs = unit.Select(u => u.Capture).OrderBy(c => c.Partial, StringComparer.Ordinal).ToList();
            var name = MergeUnits.Name(span, [salt, .. inputs.Select(c => c.Partial)]);
            var target = MergeUnits.Place(current, staged, probe, name, out bool isCarried);
            if (isCarried)
            {
                carried.Add(target);
                continue;
            }
            var options = KeyValues(keyId, (MergeUnits.FooterKey, MergeUnits.FooterValue(salt, inputs)));
            var earlier = current is null ? null : MergeUnits.Earlier(db, Path.Combine(current, LakeLayout.ProbePart(probe)), span);
            var query = earlier is { } e && MergeUnits.Added(e.Value, salt, inputs) is { } added
                ? AggregateSql.FlowsAdded(e.File, added.ConvertAll(c => c.File(AggregateSql.FlowsPartial)), hour)
                : AggregateSql.Flows(inputs.ConvertAll(c => c.File(AggregateSql.FlowsPartial)), hour);
            rows += MergeUnits.Write(db, query, target, options, ct);
        }
        return rows + MergeUnits.Rows(db, carried);
    }

    /// <summary>The staged copy of the date's merged state (<see cref="LakeLayout.MergedPartials"/>), beside the staged datasets.</summary>
    private const string MergedState = "merged";

    /// <summary>
    /// Writes the date's merged <paramref name="state"/> into <paramref name="staged"/>. When the current state (in
    /// <paramref name="current"/>) merged a subset of the date's partials under the same settings, the new state is it
    /// plus the partials added since, unless making it again reads less (<see cref="RebuildIsSmaller"/>); otherwise (and in
    /// a rebuild) it is made from every partial. Either way the partials to add are taken a few at a time
    /// (<see cref="AggregatorOptions.ResolvedStateStepBytes"/>), each step extending the state the step before wrote, so
    /// that a step's aggregate holds its own partials' keys and never the whole day's.
    /// </summary>
    private void WriteState(DuckDBConnection db, AggregateSql.MergedState state, string current, string staged, IReadOnlyList<MergeCapture> captures, bool fresh, string? keyId, CancellationToken ct)
    {
        Directory.CreateDirectory(staged);
        var salt = UnitSalt(keyId);
        var inputs = captures.OrderBy(c => c.Partial, StringComparer.Ordinal).ToList();
        var earlier = fresh || !File.Exists(state.KeysFile(current)) ? null : MergeUnits.Footer(db, state.KeysFile(current));
        var extended = MergeUnits.Added(earlier, salt, inputs);
        var stepBytes = _options.ResolvedStateStepBytes;
        if (extended is not null && extended.Count > 0 && RebuildIsSmaller(state, current, inputs, stepBytes))
            extended = null;
        string? from = extended is null ? null : current;
        var steps = Steps(extended ?? inputs, state.Partial, stepBytes);
        var footer = KeyValues(keyId, (MergeUnits.FooterKey, MergeUnits.FooterValue(salt, inputs)));
        // A state's rows are read back by key, never in file order, and keeping the copied rows' order makes DuckDB
        // buffer them: at 40 M packets of new traffic (2.1 M DNS names) this step was at the edge of its 512MiB. Each
        // DuckDB thread has its own buffers for the copy and its own share of the touched keys' lists, which cannot
        // spill: at 45 M packets (2.4 M names) the keys ran out of 512MiB on two threads, and went through on one
        // (docs/performance.md). The CPU of one thread against two was not compared in one run; the wall time of this
        // step is longer on a machine with idle cores.
        Execute(db, "SET preserve_insertion_order = false; SET threads = 1", ct);
        try
        {
            for (int i = 0; i < steps.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var target = i == steps.Count - 1 ? staged : Path.Combine(staged, "step" + i.ToString(CultureInfo.InvariantCulture));
                Directory.CreateDirectory(target);
                var added = steps[i].ConvertAll(c => c.File(state.Partial));
                MergeUnits.Write(db, AggregateSql.StateKeys(state, from is null ? null : state.KeysFile(from), added), state.KeysFile(target), footer, ct);
                foreach (var list in state.Lists)
                    MergeUnits.Write(db, AggregateSql.StatePairs(state, from is null ? null : state.ListFile(from, list), added, list), state.ListFile(target, list), KeyValues(keyId), ct);
                MergeUnits.Write(db, AggregateSql.StateCounts(state, from is null ? null : state.CountsFile(from), added, target), state.CountsFile(target), KeyValues(keyId), ct);
                if (from is not null && from != current)
                    Directory.Delete(from, recursive: true);
                from = target;
            }
        }
        finally
        {
            Execute(db, $"SET preserve_insertion_order = true; SET threads = {_options.DuckDbThreads}", CancellationToken.None);
        }
    }

    /// <summary>
    /// Whether making the state again from all of the date's partials reads less than extending the current one: the
    /// extension reads the current state's files twice (the untouched keys copied, the touched ones merged again), a
    /// rebuild reads each partial once. Only when every partial fits in one step, so that the rebuild holds no more
    /// keys at once than any step of a merge: a date of a few captures, whose names recur from one capture to the
    /// next, has a state larger than all its partials together (6.4 MB against 4.0 MB for four 500,000-packet
    /// captures), and extending it took 0.84 CPU-s against 0.74 for making it again (docs/performance.md). A large day
    /// always extends: its partials take many steps.
    /// </summary>
    private static bool RebuildIsSmaller(AggregateSql.MergedState state, string current, IReadOnlyList<MergeCapture> inputs, long stepBytes)
    {
        long partials = inputs.Sum(c => new FileInfo(c.File(state.Partial)).Length);
        if (partials > stepBytes)
            return false;
        long stateBytes = state.Files(current).Sum(f => File.Exists(f) ? new FileInfo(f).Length : 0);
        return partials <= stateBytes;
    }

    /// <summary>The partials in order, cut into steps of at most <paramref name="bytes"/> of <paramref name="partial"/> files each (at least one file a step); one empty step when there are none.</summary>
    internal static List<List<MergeCapture>> Steps(IReadOnlyList<MergeCapture> partials, string partial, long bytes)
    {
        var steps = new List<List<MergeCapture>> { new() };
        long size = 0;
        foreach (var capture in partials)
        {
            var length = new FileInfo(capture.File(partial)).Length;
            if (steps[^1].Count > 0 && size + length > bytes)
            {
                steps.Add([]);
                size = 0;
            }
            steps[^1].Add(capture);
            size += length;
        }
        return steps;
    }

    /// <summary>
    /// The COPY option that records the anonymisation key in a file's metadata, as the packets files do, and
    /// <paramref name="extra"/> entries.
    /// </summary>
    internal static string KeyValues(string? keyId, params (string Key, string Value)[] extra)
    {
        var entries = (keyId is null ? extra : [(AnonymisationMetadata.KeyIdKey, keyId), .. extra])
            .Select(e => $"{AggregateSql.Quote(e.Key)}: {AggregateSql.Quote(e.Value)}").ToList();
        return entries.Count == 0 ? "" : $", KV_METADATA {{{string.Join(", ", entries)}}}";
    }

    private static bool IsDuckDbOutOfMemory(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is DuckDBException && inner.Message.StartsWith("Out of Memory Error", StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    /// <summary>What an operator reads when DuckDB's share of the memory was not enough: the setting to raise, and that nothing was lost.</summary>
    private string OutOfMemoryMessage(string date, string duckDbMessage)
    {
        var limit = MemorySize.ForDuckDb(_options.DuckDbMemoryBytes);
        var source = _options.DuckDbMemoryLimit is null
            ? $"half of Aggregator:MemoryLimit ({_options.MemoryLimit})"
            : "Aggregator:DuckDbMemoryLimit";
        return $"Not aggregated {date}: DuckDB ran out of its {limit} ({source}). Raise Aggregator:MemoryLimit (or "
            + $"Aggregator:DuckDbMemoryLimit), or lower Aggregator:DuckDbThreads ({_options.DuckDbThreads}); the date's "
            + $"datasets are as they were and the next run tries again. DuckDB said: {duckDbMessage}";
    }

    /// <summary>
    /// Logs (at debug level) the wall and CPU time each step of a date's aggregation took since the last: where a run's
    /// time goes. CPU is the whole process's (DuckDB's threads included); the stage runs alone in it. With it, the
    /// process's peak RSS so far (which only grows, so the step where it grows is where a new peak came) and the
    /// runtime's committed heap: where the memory goes beside DuckDB's bounded share.
    /// </summary>
    private sealed class StepTimer(ILogger logger, string date)
    {
        private readonly System.Diagnostics.Stopwatch _watch = System.Diagnostics.Stopwatch.StartNew();
        private TimeSpan _cpu = Environment.CpuUsage.TotalTime;

        public void Done(string step)
        {
            if (!logger.IsEnabled(LogLevel.Debug))
                return;
            var cpu = Environment.CpuUsage.TotalTime;
            var (rss, peakRss) = ResidentMemory();
            long managedHeap = GC.GetGCMemoryInfo().TotalCommittedBytes >> 20;
            Log.AggregateStep(logger, date, step, _watch.ElapsedMilliseconds, (long)(cpu - _cpu).TotalMilliseconds, rss >> 20, peakRss >> 20, managedHeap);
            _cpu = cpu;
            _watch.Restart();
        }

        /// <summary>This process's resident memory and the kernel's high-water mark of it (<c>VmRSS</c>, <c>VmHWM</c>), or 0 where there are none.</summary>
        private static (long Now, long Peak) ResidentMemory()
        {
            long now = 0, peak = 0;
            try
            {
                foreach (var line in File.ReadLines("/proc/self/status"))
                {
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                        now = Kibibytes(line) << 10;
                    else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                        peak = Kibibytes(line) << 10;
                }
            }
            catch (IOException)
            {
            }

            return (now, peak);

            static long Kibibytes(string line) =>
                long.TryParse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture, out long kib) ? kib : 0;
        }
    }

    private static void Flush(string file)
    {
        using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.FlushToDisk(handle);
    }

    /// <summary>A DuckDB connection set up for the lake: thread and memory limits, spilling into staging, the address functions.</summary>
    public static DuckDBConnection OpenDuckDb(LakeLayout lake, AggregatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(lake);
        ArgumentNullException.ThrowIfNull(options);
        var spill = Path.Combine(lake.Staging, "duckdb");
        Directory.CreateDirectory(spill);
        var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        Ipv6Functions.Register(connection);
        Execute(connection, $"""
            SET threads = {options.DuckDbThreads};
            SET memory_limit = {AggregateSql.Quote(MemorySize.ForDuckDb(options.DuckDbMemoryBytes))};
            SET temp_directory = {AggregateSql.Quote(spill)};
            SET preserve_insertion_order = true;
            SET TimeZone = 'UTC';
            """, CancellationToken.None);
        return connection;
    }

    private static long Execute(DuckDBConnection connection, string sql, CancellationToken ct)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var registration = ct.Register(() => command.Cancel());
        return command.ExecuteNonQuery();
    }

    private static List<string> PacketFiles(LakeLayout lake, DateOnly date) => DateFiles(lake, LakeLayout.Packets, date);

    private static List<string> CaptureFiles(LakeLayout lake, DateOnly date) => DateFiles(lake, LakeLayout.Captures, date);

    /// <summary>The date's published files of a per-capture dataset (<c>probe=P/SHA.parquet</c>), sorted.</summary>
    private static List<string> DateFiles(LakeLayout lake, string dataset, DateOnly date)
    {
        var folder = lake.DatePartition(dataset, date);
        if (!Directory.Exists(folder))
            return [];
        var files = Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .ToList();
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>
    /// The partials format and the names of the date's packets files and captures rows: what the partial plan is made
    /// from (<see cref="PartialPlan.For"/>; packets and captures rows are named by capture and written once), so it
    /// changes whenever the plan's partial names can, when a capture arrives or leaves or its captures row does.
    /// </summary>
    private static string Fingerprint(LakeLayout lake, IReadOnlyList<string> packetsFiles, IReadOnlyList<string> captureFiles, string settings)
    {
        var text = new StringBuilder().Append(AggregateSql.PartialFormat).Append('/').Append(AggregateSql.DatasetFormat).Append('\n').Append(settings).Append('\n');
        foreach (var file in packetsFiles.Concat(captureFiles))
            text.Append(Path.GetRelativePath(lake.Root, file)).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}

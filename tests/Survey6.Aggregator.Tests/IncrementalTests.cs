using System.Text;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// Incremental aggregation: whatever order captures arrive in, and however they are batched into runs, the datasets
/// equal, row for row, those a rebuild of each date from its packets gives.
/// </summary>
public class IncrementalTests
{
    private const long Second = 1_000_000_000L;
    private const long Day = 86_400 * Second;

    private static readonly Ipv6Address[] Hosts =
    [
        Ipv6Address.Parse("2001:db8:1::1"), Ipv6Address.Parse("2001:db8:1::2"), Ipv6Address.Parse("2001:db8:2::211:22ff:fe33:4455"),
        Ipv6Address.Parse("2002:c000:201::1"), Ipv6Address.Parse("2001:db8:53::53"), Ipv6Address.Parse("fe80::1"),
    ];

    private sealed record Capture(string Probe, string Date, byte[] Content, string Label);

    /// <summary>A random frame: TCP, a DNS query or answer, an echo request, or a Router Advertisement.</summary>
    private static byte[] Frame(Random random)
    {
        var s = Hosts[random.Next(Hosts.Length)];
        var d = Hosts[random.Next(Hosts.Length)];
        return random.Next(5) switch
        {
            0 or 1 => FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp((ushort)random.Next(40000, 40004), 443, (ushort)(1 << random.Next(5))), s, d)),
            2 => FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, FrameBuilder.Udp(50000, 53,
                random.Next(2) == 0 ? FrameBuilder.DnsQuery(random.Next(2) == 0 ? "example.org" : "example.net", 28)
                    : FrameBuilder.DnsAaaaResponse("example.org", 0, Hosts[random.Next(3)])), s, d)),
            3 => FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(128, 0, new byte[8]), s, d)),
            _ => FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(134, 0, new byte[12]), Hosts[5], Ipv6Address.Parse("ff02::1"), hopLimit: 255)),
        };
    }

    /// <summary>
    /// Two days, three probes. On each day probe-a's captures overlap and repeat frames of one another exactly (and one
    /// repeats a frame of its own); probe-b saw some of the same frames (not duplicates: another vantage point); one
    /// capture of probe-a lies apart in time; probe-c's two captures each hold half of one TCP connection.
    /// </summary>
    private static List<Capture> Pool()
    {
        var random = new Random(20240501);
        var pool = new List<Capture>();
        foreach (var (date, offset) in new[] { ("2024-05-01", 0L), ("2024-05-02", Day) })
        {
            long T(int seconds) => CaptureFile.At(10, 0, 0) + offset + (seconds * Second);
            var seen = new List<(long Time, byte[] Frame)>();
            for (int c = 0; c < 4; c++)
            {
                var file = new CaptureFile();
                bool apart = c == 3;
                for (int i = 0; i < 40; i++)
                {
                    var frame = (T(apart ? 2400 + i : random.Next(0, 1200)), Frame(random));
                    file.Add(frame.Item1, frame.Item2);
                    seen.Add(frame);
                }
                if (!apart)
                {
                    for (int i = 0; i < 12 && seen.Count > 40; i++)
                    {
                        var (time, frame) = seen[random.Next(seen.Count - 40)];
                        file.Add(time, frame);
                    }
                    var (ownTime, own) = seen[^1];
                    file.Add(ownTime, own);
                }
                pool.Add(new Capture("probe-a", date, file.ToArray(), $"{date}/a{c}"));
            }
            for (int c = 0; c < 2; c++)
            {
                var file = new CaptureFile();
                for (int i = 0; i < 20; i++)
                {
                    var (time, frame) = seen[random.Next(seen.Count)];
                    file.Add(time, frame);
                }
                file.Add(T(random.Next(0, 1200)), Frame(random));
                pool.Add(new Capture("probe-b", date, file.ToArray(), $"{date}/b{c}"));
            }

            // One TCP connection cut in two by probe-c's capture rotation: its connections row joins both halves.
            var exchange = Connections.ConversationTests.Exchange().ConvertAll(f => (f.Time + offset, f.Frame));
            pool.Add(new Capture("probe-c", date, Connections.ConversationTests.Write(exchange[..4]), $"{date}/c0"));
            pool.Add(new Capture("probe-c", date, Connections.ConversationTests.Write(exchange[4..]), $"{date}/c1"));
        }
        return pool;
    }

    /// <summary>Every dataset's rows, in file order, each value as DuckDB prints it.</summary>
    internal static SortedDictionary<string, string> Snapshot(Workspace w)
    {
        using var db = w.DuckDb();
        var snapshot = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var date in w.Lake.PacketDates())
        {
            foreach (var dataset in LakeLayout.AggregateDatasets)
            {
                var file = w.Lake.PartitionGlob(dataset, date);
                var text = new StringBuilder();
                foreach (var row in Workspace.Rows(db, $"SELECT COLUMNS(*)::VARCHAR FROM read_parquet({Workspace.Q(file)}, hive_partitioning = false)"))
                    text.AppendJoin('|', row.Select(v => v ?? "NULL")).Append('\n');
                snapshot[LakeLayout.DatePart(date) + "/" + dataset] = text.ToString();
            }
        }
        return snapshot;
    }

    /// <param name="stateStep">
    /// <c>Aggregator:StateStepSize</c>: the default makes these small states again from the partials each run; one byte
    /// extends them, one partial a step, as a large day's are.
    /// </param>
    [Theory]
    [InlineData(1, null)]
    [InlineData(2, null)]
    [InlineData(3, "1B")]
    [InlineData(4, "1B")]
    public async Task Any_arrival_order_in_any_batches_gives_the_rows_of_a_rebuild(int seed, string? stateStep)
    {
        var pool = Pool();
        var random = new Random(seed);
        var order = pool.OrderBy(_ => random.Next()).ToList();

        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:StateStepSize"] = stateStep });
        int next = 0;
        var lateForBuiltDay = false;
        while (next < order.Count)
        {
            int batch = Math.Min(order.Count - next, random.Next(1, 4));
            foreach (var capture in order.Skip(next).Take(batch))
            {
                lateForBuiltDay |= w.Lake.PacketDates().Any(d => LakeLayout.DatePart(d) == "date=" + capture.Date
                    && w.Lake.HasPartition(LakeLayout.Flows, d));
                w.Store(capture.Content, capture.Probe, capture.Date);
            }
            next += batch;
            await w.RunAsync(AggregatorStage.Parse);
            await w.RunAsync(AggregatorStage.Aggregate);
        }
        Assert.True(lateForBuiltDay, "the order should bring a capture for a day already aggregated");
        var incremental = Snapshot(w);
        Assert.Equal(2 * LakeLayout.AggregateDatasets.Count, incremental.Count);
        Assert.Contains(incremental, kv => kv.Key.EndsWith("/summary", StringComparison.Ordinal) && kv.Value.Split('\n').Any(r => r.Split('|')[4] != "0"));

        foreach (var date in w.Lake.PacketDates())
        {
            var report = await w.Runner.RebuildAsync(date, TimeSpan.FromSeconds(30), CancellationToken.None);
            Assert.NotNull(report);
            Assert.True(report.Succeeded, report.Error);
            Assert.Equal(8, report.Inputs); // every capture of the date read again
        }
        var rebuilt = Snapshot(w);
        foreach (var (name, rows) in rebuilt)
            Assert.True(rows == incremental[name], $"{name} differs between incremental runs and the rebuild:\n{incremental[name]}\n---\n{rows}");
        using (var db = w.DuckDb())
        {
            // Connections are compared too, and the one split over probe-c's captures is joined whatever the arrival order.
            var connections = Path.Combine(w.Lake.Dataset(LakeLayout.Connections), "*", "*", "*.parquet");
            Assert.True(Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(connections)})") > 20);
            var split = Workspace.Rows(db, $"SELECT conn_state, history, orig_pkts, resp_pkts FROM read_parquet({Workspace.Q(connections)}) WHERE probe_id = 'probe-c'");
            Assert.Equal(2, split.Count);
            Assert.All(split, r => Assert.Equal(["SF", "ShADadFf", 5L, 4L], r));
        }

        // Nor does the order matter: one arrival of everything at once gives the same rows.
        using var once = new Workspace();
        foreach (var capture in pool)
            once.Store(capture.Content, capture.Probe, capture.Date);
        await once.RunAsync(AggregatorStage.Parse);
        await once.RunAsync(AggregatorStage.Aggregate);
        var all = Snapshot(once);
        foreach (var (name, rows) in all)
            Assert.True(rows == incremental[name], $"{name} differs from one run over everything");
    }

    [Fact]
    public async Task A_late_capture_apart_in_time_is_the_only_packets_a_run_reads()
    {
        using var w = await AggregateTests.BuildAsync();
        var first = w.Ledger.RecentRuns(5).Single(r => r.Stage == "aggregate");
        Assert.Equal(3, first.Inputs);

        w.Store(new CaptureFile().Add(CaptureFile.At(10, 50, 0), FrameBuilder.Ethernet(0x86DD,
            FrameBuilder.Ipv6(6, FrameBuilder.Tcp(1234, 80, 0x002), Hosts[3], Hosts[2]))).ToArray());
        await w.RunAsync(AggregatorStage.Parse);
        var late = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal((1L, (long)LakeLayout.AggregateDatasets.Count), (late.Inputs, late.Outputs));
        Assert.Equal(4, Directory.EnumerateDirectories(w.Lake.PartialsPartition(new DateOnly(2024, 5, 1)), "*", SearchOption.AllDirectories).Count(d => Path.GetFileName(d).Contains('.', StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(LakeLayout.Connections)]
    [InlineData(LakeLayout.Flows)]
    public async Task A_late_capture_rewrites_the_unit_of_its_probe_and_hour_and_carries_the_rest_over(string dataset)
    {
        using var w = new Workspace();
        byte[] Tcp(int hour, ushort port, Ipv6Address from) => new CaptureFile()
            .Add(CaptureFile.At(hour, 0, 0), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp(port, 443, 0x002), from, Hosts[2])))
            .Add(CaptureFile.At(hour, 0, 1), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp(443, port, 0x012), Hosts[2], from)))
            .ToArray();
        w.Store(Tcp(10, 40000, Hosts[0]), "probe-a");
        w.Store(Tcp(14, 40001, Hosts[0]), "probe-a");
        w.Store(Tcp(10, 40002, Hosts[1]), "probe-b");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        var date = new DateOnly(2024, 5, 1);
        var folder = w.Lake.DatePartition(dataset, date);
        string[] Units() => Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal).ToArray();
        var before = Units();
        Assert.Equal(["probe=probe-a/2024-05-01T10", "probe=probe-a/2024-05-01T14", "probe=probe-b/2024-05-01T10"],
            before.Select(u => u[..u.IndexOf('.', StringComparison.Ordinal)]));
        // Marks every file, so that a file carried over into the new partition is told from one written again.
        var marked = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        foreach (var unit in before)
            File.SetLastWriteTimeUtc(Path.Combine(folder, unit), marked);

        w.Store(Tcp(14, 40003, Hosts[1]), "probe-a");
        await w.RunAsync(AggregatorStage.Parse);
        var late = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(1, late.Inputs);

        var after = Units();
        Assert.Equal(3, after.Length);
        Assert.Equal([before[0], before[2]], after.Where(u => File.GetLastWriteTimeUtc(Path.Combine(folder, u)) == marked));
        var rewritten = Assert.Single(after, u => File.GetLastWriteTimeUtc(Path.Combine(folder, u)) != marked);
        Assert.StartsWith("probe=probe-a/2024-05-01T14.", rewritten, StringComparison.Ordinal);
        Assert.NotEqual(before[1], rewritten);

        // A connection is a row; a flow is one direction of it.
        var clientPort = dataset == LakeLayout.Connections ? "orig_p" : "greatest(flow_src_port, flow_dst_port)";
        using var db = w.DuckDb();
        Assert.Equal([40001L, 40003L], Workspace.Rows(db, $"SELECT DISTINCT CAST({clientPort} AS BIGINT) AS p FROM read_parquet({Workspace.Q(Path.Combine(folder, rewritten))}) ORDER BY p").Select(r => r[0]));
        Assert.Equal(dataset == LakeLayout.Connections ? 4L : 8L, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(w.Lake.PartitionGlob(dataset, date))})"));
    }

    [Fact]
    public async Task A_probes_flows_hour_is_its_earlier_file_plus_the_captures_added_since()
    {
        using var w = new Workspace();
        var date = new DateOnly(2024, 5, 1);
        byte[] Syn(int minute) => new CaptureFile()
            .Add(CaptureFile.At(10, minute, 0), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp(40000, 443, 0x002), Hosts[0], Hosts[2])))
            .ToArray();
        w.Store(Syn(0));
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        // The earlier file is changed by hand, its footer kept: only a merge that reads it can carry the change on.
        var folder = Path.Combine(w.Lake.DatePartition(LakeLayout.Flows, date), "probe=probe-a");
        var earlier = Directory.GetFiles(folder, "*.parquet").Single();
        using (var db = w.DuckDb())
        {
            var unit = Workspace.Rows(db, $"SELECT decode(value) FROM parquet_kv_metadata({Workspace.Q(earlier)}) WHERE decode(key) = 'survey6.unit'").Single()[0];
            Workspace.Rows(db, $"COPY (SELECT * REPLACE (packets + 1000 AS packets) FROM read_parquet({Workspace.Q(earlier)})) TO {Workspace.Q(earlier + ".new")} (FORMAT parquet, KV_METADATA {{'survey6.unit': {Workspace.Q((string)unit!)}}})");
        }
        File.Move(earlier + ".new", earlier, overwrite: true);

        w.Store(Syn(30));
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal("2024-05-01T10", Path.GetFileName(Directory.GetFiles(folder, "*.parquet").Single()).Split('.')[0]);
        string Flow()
        {
            using var db = w.DuckDb();
            var row = Workspace.Rows(db, $"SELECT packets, captures FROM read_parquet({Workspace.Q(w.Lake.PartitionGlob(LakeLayout.Flows, date))})").Single();
            return $"{row[0]} packets in {row[1]} captures";
        }
        Assert.Equal("1002 packets in 2 captures", Flow());

        // A rebuild merges every partial again.
        await w.Runner.RebuildAsync(date, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal("2 packets in 2 captures", Flow());
    }

    [Fact]
    public async Task A_dates_dns_is_its_merged_state_plus_the_partials_added_since()
    {
        using var w = new Workspace();
        var date = new DateOnly(2024, 5, 1);
        byte[] Query(int hour) => new CaptureFile()
            .Add(CaptureFile.At(hour, 0, 0), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, FrameBuilder.Udp(50000, 53, FrameBuilder.DnsQuery("example.org", 28)), Hosts[0], Hosts[4])))
            .ToArray();
        w.Store(Query(10), "probe-a");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        // The state is changed by hand, its footer kept: only a merge that reads it can carry the change on.
        var keys = Path.Combine(w.Lake.MergedPartials(date), "dns_keys.parquet");
        using (var db = w.DuckDb())
        {
            var unit = Workspace.Rows(db, $"SELECT decode(value) FROM parquet_kv_metadata({Workspace.Q(keys)}) WHERE decode(key) = 'survey6.unit'").Single()[0];
            Workspace.Rows(db, $"COPY (SELECT * REPLACE (messages + 1000 AS messages) FROM read_parquet({Workspace.Q(keys)})) TO {Workspace.Q(keys + ".new")} (FORMAT parquet, KV_METADATA {{'survey6.unit': {Workspace.Q((string)unit!)}}})");
        }
        File.Move(keys + ".new", keys, overwrite: true);

        w.Store(Query(14), "probe-b");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        string Dns()
        {
            using var db = w.DuckDb();
            var row = Workspace.Rows(db, $"SELECT messages, clients, servers, probes::VARCHAR FROM read_parquet({Workspace.Q(w.Lake.PartitionGlob(LakeLayout.Dns, date))})").Single();
            return $"{row[0]} messages, {row[1]} client, {row[2]} server, probes {row[3]}";
        }
        Assert.Equal("1002 messages, 1 client, 1 server, probes [probe-a, probe-b]", Dns());

        // A rebuild merges every partial again.
        await w.Runner.RebuildAsync(date, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal("2 messages, 1 client, 1 server, probes [probe-a, probe-b]", Dns());
    }

    /// <summary>
    /// A large day's state is extended (here forced by a step of one byte, which the partials exceed): a name the added
    /// partials do not touch keeps its counts. A small day's is made again (the next test).
    /// </summary>
    [Fact]
    public async Task A_dates_pair_counts_are_counted_again_only_for_the_names_the_added_partials_touch()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:StateStepSize"] = "1B" });
        Assert.Equal("example.net 1001, example.org 1", await CountsAfterALateCaptureAsync(w));

        // A rebuild counts every name again.
        await w.Runner.RebuildAsync(new DateOnly(2024, 5, 1), TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.Equal("example.net 1, example.org 1", DnsClients(w));
    }

    /// <summary>
    /// With the default step, a date whose partials together are smaller than its state (names recur from capture to
    /// capture) makes the state again from every partial rather than extending it: reading the state twice would cost
    /// more. Every name is counted again, the hand-changed one too.
    /// </summary>
    [Fact]
    public async Task A_small_dates_state_is_made_again_from_its_partials_when_that_reads_less()
    {
        using var w = new Workspace();
        Assert.Equal("example.net 1, example.org 1", await CountsAfterALateCaptureAsync(w));
    }

    /// <summary>
    /// Two names on probe-a, the state's client counts raised by 1000 by hand, then a late capture of probe-b that
    /// touches one of them: the names and client counts of <c>dns</c> after it (a name whose counts were copied keeps the change).
    /// </summary>
    private static async Task<string> CountsAfterALateCaptureAsync(Workspace w)
    {
        var date = new DateOnly(2024, 5, 1);
        static byte[] Query(string name) => FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, FrameBuilder.Udp(50000, 53, FrameBuilder.DnsQuery(name, 28)), Hosts[0], Hosts[4]));
        w.Store(new CaptureFile().Add(CaptureFile.At(10, 0, 0), Query("example.org")).Add(CaptureFile.At(10, 0, 1), Query("example.net")).ToArray(), "probe-a");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        // The state's counts are changed by hand: only a name whose counts are copied keeps the change.
        var counts = Path.Combine(w.Lake.MergedPartials(date), "dns_counts.parquet");
        using (var db = w.DuckDb())
            Workspace.Rows(db, $"COPY (SELECT * REPLACE (n_clients + 1000 AS n_clients) FROM read_parquet({Workspace.Q(counts)})) TO {Workspace.Q(counts + ".new")} (FORMAT parquet)");
        File.Move(counts + ".new", counts, overwrite: true);

        w.Store(new CaptureFile().Add(CaptureFile.At(14, 0, 0), Query("example.org")).ToArray(), "probe-b");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        return DnsClients(w);
    }

    private static string DnsClients(Workspace w)
    {
        using var db = w.DuckDb();
        return string.Join(", ", Workspace.Rows(db, $"SELECT qname, clients FROM read_parquet({Workspace.Q(w.Lake.PartitionGlob(LakeLayout.Dns, new DateOnly(2024, 5, 1)))}) ORDER BY qname")
            .Select(r => $"{r[0]} {r[1]}"));
    }

    [Fact]
    public async Task A_late_overlapping_capture_recomputes_the_captures_whose_duplicates_it_decides()
    {
        using var w = new Workspace();
        long t = CaptureFile.At(10, 0, 0);
        var syn = FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp(40000, 443, 0x002), Hosts[0], Hosts[2]));
        var ack = FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp(40000, 443, 0x010), Hosts[0], Hosts[2]));
        var captures = Enumerable.Range(0, 3)
            .Select(i => new CaptureFile().Add(t, syn).Add(t + ((i + 1) * Second), ack).ToArray())
            .Select(c => (Content: c, Sha: Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(c))))
            .OrderBy(c => c.Sha, StringComparer.Ordinal)
            .ToList();
        // The two with the larger hashes first; then the smallest, which now owns the shared SYN.
        w.Store(captures[1].Content);
        w.Store(captures[2].Content);
        await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(2, (await w.RunAsync(AggregatorStage.Aggregate)).Inputs);
        w.Store(captures[0].Content);
        await w.RunAsync(AggregatorStage.Parse);
        var late = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(3, late.Inputs);

        using var db = w.DuckDb();
        var summary = Path.Combine(w.Lake.DatePartition(LakeLayout.Summary, new DateOnly(2024, 5, 1)), LakeLayout.PartitionFile);
        Assert.Equal([3L, 6L, 2L, 4L], Workspace.Rows(db, $"SELECT captures, frames, duplicates, packets FROM read_parquet({Workspace.Q(summary)})").Single());
    }

    [Fact]
    public async Task Rebuilding_a_date_without_packets_fails_and_says_so()
    {
        using var w = await AggregateTests.BuildAsync();
        var report = await w.Runner.RebuildAsync(new DateOnly(2024, 5, 9), TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.NotNull(report);
        Assert.Equal("failed", report.Status);
        Assert.Equal("InvalidOperationException: No packets for 2024-05-09: nothing to rebuild.", report.Error);
        Assert.True(w.Lake.HasPartition(LakeLayout.Flows, new DateOnly(2024, 5, 1)));
    }
}

using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Packets.Addresses;
using Survey6.Testing;

namespace Survey6.Aggregator.Tests;

/// <summary><c>Aggregator:MemoryLimit</c>: one bound for the aggregate stage, checked at start, of which DuckDB gets its share.</summary>
public class MemoryLimitTests
{
    [Theory]
    [InlineData("lots", "MemoryLimit must be a size of at least 256MiB such as 1GiB or 1500MB (is 'lots').")]
    [InlineData("100MiB", "MemoryLimit must be a size of at least 256MiB such as 1GiB or 1500MB (is '100MiB').")]
    public void A_memory_limit_that_is_no_size_or_too_small_stops_the_start(string value, string message)
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:MemoryLimit"] = value });
        var e = Assert.ThrowsAny<Exception>(() => w.Options);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuckDbs_own_limit_may_not_exceed_the_memory_limit()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:MemoryLimit"] = "1GiB", ["Aggregator:DuckDbMemoryLimit"] = "2GB" });
        var e = Assert.ThrowsAny<Exception>(() => w.Options);
        Assert.Contains("DuckDbMemoryLimit must be a size such as 512MiB, at most MemoryLimit (1GiB) (is '2GB')", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_its_own_limit_DuckDB_gets_half_of_the_memory_limit()
    {
        using var w = new Workspace();
        var options = new AggregatorOptions { DataDirectory = w.DataDirectory, MemoryLimit = "1500MiB" };
        Assert.Equal(750L << 20, options.DuckDbMemoryBytes);
        using var db = AggregateStage.OpenDuckDb(w.Lake, options);
        using var reference = w.DuckDb();
        Workspace.Rows(reference, "SET memory_limit = '750MiB'");
        // Compared with DuckDB's own display of 750 MiB, whatever rounding it prints.
        Assert.Equal(
            Workspace.Rows(reference, "SELECT current_setting('memory_limit')").Single()[0],
            Workspace.Rows(db, "SELECT current_setting('memory_limit')").Single()[0]);
    }

    [Fact]
    public async Task A_date_too_large_for_DuckDBs_share_fails_naming_the_setting_and_keeps_its_datasets()
    {
        using var w = await AggregateTests.BuildAsync();
        var date = new DateOnly(2024, 5, 1);
        string Files() => string.Join('\n', Directory.EnumerateFiles(w.Lake.Dataset(LakeLayout.Flows), "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        var before = Files();
        Assert.NotEmpty(before);

        // A late capture for the day, merged with far too little memory for DuckDB.
        var echo = FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(128, 0, new byte[8]),
            Ipv6Address.Parse("2001:db8:7::1"), Ipv6Address.Parse("2001:db8:7::2")));
        w.Store(new CaptureFile().Add(CaptureFile.At(12, 0, 0), echo).ToArray(), probe: "probe-c");
        await w.RunAsync(AggregatorStage.Parse);
        w.Reconfigure("Aggregator:DuckDbMemoryLimit", "4MiB");
        var failed = await w.Runner.RunAsync(AggregatorStage.Aggregate, TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.NotNull(failed);
        Assert.False(failed.Succeeded);
        Assert.StartsWith("InvalidOperationException: Not aggregated 2024-05-01: DuckDB ran out of its 4MiB (Aggregator:DuckDbMemoryLimit). Raise Aggregator:MemoryLimit", failed.Error, StringComparison.Ordinal);
        Assert.Contains("the date's datasets are as they were and the next run tries again. DuckDB said: Out of Memory Error", failed.Error, StringComparison.Ordinal);
        Assert.Equal(before, Files());

        // With DuckDB's default share the same run goes through, and the late capture is in.
        w.Reconfigure("Aggregator:DuckDbMemoryLimit", null);
        await w.RunAsync(AggregatorStage.Aggregate);
        using var db = w.DuckDb();
        Assert.Equal(1L, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(w.Lake.PartitionGlob(LakeLayout.Flows, date))}) WHERE probe_id = 'probe-c'"));
    }

    [Fact]
    public void A_merged_states_partials_are_added_in_steps_of_at_most_the_step_size_and_at_least_one_partial()
    {
        using var w = new Workspace();
        MergeCapture Partial(string name, int bytes)
        {
            var folder = Path.Combine(w.DataDirectory, "partials", name);
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(Path.Combine(folder, "dns.parquet"), new byte[bytes]);
            return new MergeCapture(name, "probe-a", folder, name, false, false);
        }
        var partials = new[] { Partial("a", 300), Partial("b", 300), Partial("c", 500), Partial("d", 900), Partial("e", 100) };

        // 600 bytes a step: a and b together; c alone (c and d would be 1,400); d alone although larger; then e.
        var steps = AggregateStage.Steps(partials, "dns", 600);
        Assert.Equal(["a b", "c", "d", "e"], steps.Select(s => string.Join(' ', s.Select(p => p.Partial))));
        Assert.Equal([[]], AggregateStage.Steps([], "dns", 600));
    }

    [Fact]
    public async Task A_date_with_more_DNS_names_than_one_file_holds_is_written_in_files_by_name_each_sorted_together_the_same_rows()
    {
        using var w = await AggregateTests.BuildAsync();
        var date = new DateOnly(2024, 5, 1);
        var queries = new CaptureFile();
        for (int i = 0; i < 9; i++)
        {
            var datagram = FrameBuilder.Udp(50100, 53, FrameBuilder.DnsQuery($"host{i}.example.net", 28));
            queries.Add(CaptureFile.At(11, 0, i), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, datagram, Ipv6Address.Parse("2001:db8:7::1"), Ipv6Address.Parse("2001:db8:7::53"))));
        }
        w.Store(queries.ToArray(), probe: "probe-c");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        var partition = w.Lake.DatePartition(LakeLayout.Dns, date);
        const string Columns = "transport, qname, qtype, rcode, messages, queries, responses, clients, servers, first_seen_ns, last_seen_ns, aaaa_records, array_to_string(aaaa, ' '), array_to_string(probes, ' ')";
        const string Order = "ORDER BY transport, qname NULLS FIRST, qtype NULLS FIRST, rcode NULLS FIRST";
        List<object?[]> Read(string file)
        {
            using var db = w.DuckDb();
            return Workspace.Rows(db, $"SELECT {Columns} FROM read_parquet({Workspace.Q(file)}) {(file.Contains('*', StringComparison.Ordinal) ? Order : "")}");
        }
        Assert.Equal([LakeLayout.PartitionFile], Directory.GetFiles(partition).Select(Path.GetFileName));
        var whole = Read(Path.Combine(partition, "*.parquet"));
        var names = whole.Select(r => r[1]).Distinct().Count();
        Assert.True(names >= 10, $"the day has {names} names");

        // Two names per file: the rebuild writes ceil(rows / 2) files, each sorted, a name never in two of them.
        w.Reconfigure("Aggregator:DnsNamesPerFile", "2");
        var report = await w.Runner.RebuildAsync(date, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.True(report is { Succeeded: true }, report?.Error);
        var parts = (whole.Count + 1) / 2;
        var files = Directory.GetFiles(partition).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Enumerable.Range(1, parts).Select(k => $"data.{k:D3}-of-{parts:D3}.parquet"), files);
        var byFile = files.Select(f => Read(Path.Combine(partition, f!))).ToList();
        foreach (var rows in byFile)
            Assert.Equal(rows.OrderBy(r => (string)r[0]!, StringComparer.Ordinal).ThenBy(r => (string?)r[1], StringComparer.Ordinal).ThenBy(r => r[2]).ThenBy(r => r[3]), rows);
        Assert.All(whole.Select(r => r[1]).Distinct(), name => Assert.Single(byFile, rows => rows.Any(r => Equals(r[1], name))));
        Assert.Equal(whole, Read(Path.Combine(partition, "*.parquet")));
        Assert.True(w.Lake.HasPartition(LakeLayout.Dns, date));

        // Queries read the date's files as one table.
        using var query = w.DuckDb();
        Assert.Equal((long)whole.Count, Workspace.Scalar<long>(query, $"SELECT count(*) FROM read_parquet({Workspace.Q(w.Lake.PartitionGlob(LakeLayout.Dns, date))})"));
    }

    [Fact]
    public void A_state_step_must_be_a_size()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:StateStepSize"] = "sixteen" });
        var e = Assert.ThrowsAny<Exception>(() => w.Options);
        Assert.Contains("StateStepSize must be a size such as 16MiB (is 'sixteen'); leave it unset for a thirty-second of DuckDB's memory.", e.Message, StringComparison.Ordinal);
        Assert.Equal(16L << 20, new AggregatorOptions().ResolvedStateStepBytes);
        Assert.Equal(1L, new AggregatorOptions { StateStepSize = "1B" }.ResolvedStateStepBytes);
    }

    [Fact]
    public void DNS_names_per_file_must_be_positive()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:DnsNamesPerFile"] = "0" });
        var e = Assert.ThrowsAny<Exception>(() => w.Options);
        Assert.Contains("DnsNamesPerFile must be at least 1 (is 0); leave it unset for one name per KiB of DuckDB's memory.", e.Message, StringComparison.Ordinal);
        Assert.Equal(524_288L, new AggregatorOptions().ResolvedDnsNamesPerFile);
    }

    [Fact]
    public void A_packets_row_group_follows_the_memory_limit_unless_set()
    {
        Assert.Equal(131_072, new AggregatorOptions().ResolvedRowGroupSize);
        Assert.Equal(32_768, new AggregatorOptions { MemoryLimit = "256MiB" }.ResolvedRowGroupSize);
        Assert.Equal(1 << 20, new AggregatorOptions { MemoryLimit = "64GiB" }.ResolvedRowGroupSize);
        Assert.Equal(5000, new AggregatorOptions { RowGroupSize = 5000 }.ResolvedRowGroupSize);

        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:RowGroupSize"] = "100" });
        var e = Assert.ThrowsAny<Exception>(() => w.Options);
        Assert.Contains("RowGroupSize must be between 1024 and 16777216 (is 100); leave it unset for one row per 8 KiB of MemoryLimit.", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1GiB", 1L << 30)]
    [InlineData("1500MB", 1_500_000_000L)]
    [InlineData(" 0.5 gib ", 1L << 29)]
    [InlineData("268435456B", 1L << 28)]
    public void Sizes_read_as_DuckDB_reads_them(string text, long bytes)
    {
        Assert.True(MemorySize.TryParse(text, out long parsed));
        Assert.Equal(bytes, parsed);
    }
}

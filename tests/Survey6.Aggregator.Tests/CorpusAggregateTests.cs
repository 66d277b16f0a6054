using System.Text.Json;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Cli;

namespace Survey6.Aggregator.Tests;

/// <summary>The corpus's datasets against computations that do not go through the aggregator.</summary>
[Collection("corpus")]
public class CorpusAggregateTests(CorpusFixture corpus)
{
    private Workspace W => corpus.Workspace;

    private List<string> RecordFiles()
    {
        var files = new List<string>();
        foreach (var (sha, source) in corpus.Shas)
        {
            if (W.Ledger.GetCapture(sha)!.Status != RunLedger.Parsed)
                continue;
            var jsonl = Path.Combine(W.Root, "records-" + sha + ".jsonl");
            if (!File.Exists(jsonl))
            {
                using var output = File.Create(jsonl);
                using var error = new StringWriter();
                Assert.Equal(0, PcapCommands.Records(source, "jsonl", output, error));
            }
            if (new FileInfo(jsonl).Length > 0)
                files.Add(jsonl);
        }
        return files;
    }

    [Fact]
    public void Flows_match_a_count_over_the_records_that_survey6_pcap_records_prints()
    {
        var files = "[" + string.Join(", ", RecordFiles().Select(Workspace.Q)) + "]";
        const string Columns = "{'frame': 'BIGINT', 'time_epoch_ns': 'BIGINT', 'frame_len': 'BIGINT', 'cap_len': 'BIGINT', 'path': 'VARCHAR', "
            + "'src': 'VARCHAR', 'dst': 'VARCHAR', 'payload_length': 'BIGINT', 'hop_limit': 'BIGINT', 'flow_label': 'BIGINT', "
            + "'encapsulation': 'VARCHAR', 'flow_src': 'VARCHAR', 'flow_dst': 'VARCHAR', 'flow_protocol': 'BIGINT', 'flow_src_port': 'BIGINT', "
            + "'flow_dst_port': 'BIGINT', 'tcp_flags': 'BIGINT', 'icmpv6_type': 'BIGINT', 'dns_qname': 'VARCHAR'}";
        // Duplicates (same probe, time and bytes) are told apart here by time, lengths and every dissected header field.
        // A flows row is one UTC hour of a flow.
        var independent = $"""
            SELECT flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, encapsulation, time_epoch_ns // 3600000000000 AS hour, count(*) AS packets, CAST(sum(frame_len) AS BIGINT) AS bytes
            FROM (
                SELECT * FROM read_json({files}, format = 'newline_delimited', columns = {Columns}, filename = true)
                QUALIFY time_epoch_ns IS NULL OR row_number() OVER (
                    PARTITION BY time_epoch_ns, frame_len, cap_len, path, src, dst, payload_length, hop_limit, flow_label, flow_src, flow_dst,
                                 flow_protocol, flow_src_port, flow_dst_port, tcp_flags, icmpv6_type, dns_qname
                    ORDER BY filename, frame) = 1
            )
            WHERE flow_src IS NOT NULL
            GROUP BY ALL
            """;
        var lake = $"""
            SELECT flow_src, flow_dst, CAST(flow_protocol AS BIGINT), CAST(flow_src_port AS BIGINT), CAST(flow_dst_port AS BIGINT), encapsulation, first_seen_ns // 3600000000000, packets, bytes
            FROM read_parquet({Workspace.Q(Path.Combine(W.Lake.Dataset(LakeLayout.Flows), "*", "*", "*.parquet"))})
            """;
        using var db = W.DuckDb();
        Assert.Empty(Workspace.Rows(db, $"({independent}) EXCEPT ALL ({lake})"));
        Assert.Empty(Workspace.Rows(db, $"({lake}) EXCEPT ALL ({independent})"));
        Assert.True(Workspace.Scalar<long>(db, $"SELECT count(*) FROM ({lake})") > 100);
    }

    [Fact]
    public void Summary_totals_match_the_packet_core_statistics_and_the_manifests()
    {
        long frames = 0, bytes = 0;
        foreach (var state in W.Ledger.Captures(RunLedger.Parsed))
        {
            using var output = new MemoryStream();
            using var error = new StringWriter();
            PcapCommands.Stats([corpus.Shas[state.Sha256]], output, error);
            using var json = JsonDocument.Parse(output.ToArray());
            frames += json.RootElement.GetProperty("frames").GetInt64();
            bytes += json.RootElement.GetProperty("bytes_on_wire").GetInt64();
        }
        using var db = W.DuckDb();
        var summary = Workspace.Q(Path.Combine(W.Lake.Dataset(LakeLayout.Summary), "*", "*.parquet"));
        var row = Workspace.Rows(db, $"SELECT CAST(sum(frames) AS BIGINT), CAST(sum(packets + duplicates) AS BIGINT), CAST(sum(bytes) AS BIGINT), CAST(sum(dropped) AS BIGINT) FROM read_parquet({summary})").Single();
        Assert.Equal(frames, row[0]);
        Assert.True((long)row[2]! <= bytes); // duplicates' bytes are left out
        // Every parsed capture declared 1 + 2 + 2 + 1 drops; spread over its hours, they still add up exactly.
        var parsed = W.Ledger.Captures(RunLedger.Parsed).Count;
        Assert.Equal(6L * parsed, row[3]);
    }

    [Fact]
    public void Every_column_of_every_dataset_is_documented()
    {
        var docs = DatasetsDoc();
        using var db = W.DuckDb();
        foreach (var dataset in LakeLayout.AllDatasets)
        {
            var glob = Path.Combine(W.Lake.Dataset(dataset), LakeLayout.HasProbeFolders(dataset) ? Path.Combine("*", "*", "*.parquet") : Path.Combine("*", "*.parquet"));
            var columns = Workspace.Rows(db, $"SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet({Workspace.Q(glob)}, hive_partitioning = true))").Select(r => (string)r[0]!).ToList();
            Assert.NotEmpty(columns);
            var section = docs[docs.IndexOf("## " + dataset + "\n", StringComparison.Ordinal)..];
            section = section[..(section.IndexOf("\n## ", 3, StringComparison.Ordinal) is var end and > 0 ? end : section.Length)];
            foreach (var column in columns.Where(c => c is not "date" and not "probe"))
                Assert.True(section.Contains("`" + column + "`", StringComparison.Ordinal) || ColumnInGroup(section, column), $"{dataset}.{column} is not in docs/datasets.md");
        }
    }

    /// <summary>Columns documented in groups, e.g. `location_*` or `src_type`, `src_iid` on one line.</summary>
    private static bool ColumnInGroup(string section, string column) =>
        column.Contains('_', StringComparison.Ordinal) && section.Contains("`" + column[..column.IndexOf('_', StringComparison.Ordinal)] + "_*`", StringComparison.Ordinal);

    private static string DatasetsDoc()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "docs", "datasets.md");
            if (File.Exists(candidate))
                return File.ReadAllText(candidate).ReplaceLineEndings("\n");
        }
        throw new FileNotFoundException("docs/datasets.md above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void DuckDb_reads_every_output_and_aggregate_row_counts_match_the_ledger()
    {
        using var db = W.DuckDb();
        var files = Directory.EnumerateFiles(W.LakeDirectory, "*.parquet", SearchOption.AllDirectories)
            .Where(f => !f.StartsWith(W.Lake.Staging, StringComparison.Ordinal)).ToList();
        Assert.True(files.Count > 80);
        foreach (var file in files)
            Assert.True(Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(file)})") >= 0);

        var partition = Assert.Single(W.Ledger.Partitions());
        var rows = JsonSerializer.Deserialize<Dictionary<string, long>>(partition.RowsJson)!;
        foreach (var dataset in LakeLayout.AggregateDatasets)
        {
            var file = W.Lake.PartitionGlob(dataset, partition.Date);
            Assert.Equal(rows[dataset], Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(file)})"));
        }
    }
}

using System.Text;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Cli;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Tests;

/// <summary>The shared corpus stored, parsed and aggregated once; the tests of the "corpus" collection look at the result.</summary>
public sealed class CorpusFixture : IDisposable
{
    public CorpusFixture()
    {
        Workspace = new Workspace();
        foreach (var path in TestData.AllCaptures())
            Shas[Workspace.Store(File.ReadAllBytes(path))] = path;
        Workspace.RunAsync(AggregatorStage.Parse).GetAwaiter().GetResult();
        Workspace.RunAsync(AggregatorStage.Aggregate).GetAwaiter().GetResult();
    }

    public Workspace Workspace { get; }

    /// <summary>Stored SHA-256 to the corpus file it came from.</summary>
    public Dictionary<string, string> Shas { get; } = [];

    public void Dispose() => Workspace.Dispose();
}

[CollectionDefinition("corpus")]
public sealed class CorpusCollection : ICollectionFixture<CorpusFixture>;

[Collection("corpus")]
public class ParseTests(CorpusFixture corpus)
{
    private Workspace W => corpus.Workspace;

    /// <summary>What the packet core says about a file: frames read, and whether reading stopped on damage.</summary>
    private static (long Frames, CaptureError? Error) Read(string path)
    {
        var statistics = new CaptureStatistics();
        using var reader = CaptureReader.Open(path);
        var record = new PacketRecord();
        long n = 0;
        while (reader.TryRead(out var frame))
        {
            FrameDissection.Dissect(frame, ++n, ref record);
            statistics.Add(record);
        }
        return (statistics.Frames, reader.Error);
    }

    [Fact]
    public void Every_readable_shared_capture_has_as_many_rows_as_frames_and_damaged_ones_are_quarantined()
    {
        using var db = W.DuckDb();
        int parsed = 0, quarantined = 0;
        foreach (var (sha, source) in corpus.Shas)
        {
            var (frames, error) = Read(source);
            var state = W.Ledger.GetCapture(sha);
            Assert.NotNull(state);
            var file = W.Lake.PerCaptureFile(LakeLayout.Packets, new DateOnly(2024, 5, 1), "probe-a", sha);
            if (error is null)
            {
                Assert.Equal(RunLedger.Parsed, state.Status);
                Assert.Equal(frames, state.Frames);
                Assert.Equal(frames, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(file)})"));
                parsed++;
            }
            else
            {
                Assert.Equal(RunLedger.Quarantined, state.Status);
                Assert.Contains($"offset {error.Offset}", state.Reason, StringComparison.Ordinal);
                Assert.False(File.Exists(file));
                quarantined++;
            }
        }
        Assert.True(parsed >= 40, $"{parsed} parsed");
        Assert.True(quarantined >= 1, "the corpus has damaged captures");
    }

    [Fact]
    public void Packets_columns_equal_the_records_that_survey6_pcap_records_prints()
    {
        // The JSON Lines records are the reference; both sides go through DuckDB as text, lists joined with commas.
        string[] columns =
        [
            "frame", "time_epoch_ns", "frame_len", "cap_len", "link_type", "path", "encapsulation", "ipv6_headers", "vlan_id",
            "ipv4_src", "ipv4_dst", "src", "dst", "next_header", "hop_limit", "flow_label", "traffic_class", "payload_length",
            "ext_chain", "frag_offset", "frag_more", "frag_id", "routing_type", "segments_left", "mobility_type", "ah_spi", "esp_spi",
            "flow_src", "flow_dst", "flow_protocol", "flow_src_port", "flow_dst_port", "src_type", "src_iid", "dst_type", "dst_iid",
            "tcp_flags", "icmpv6_type", "icmpv6_code", "nd_target", "ra_prefixes", "dns_transport", "dns_response", "dns_qname",
            "dns_qtype", "dns_rcode", "dns_aaaa", "anomalies",
        ];
        var parquetSide = string.Join(", ", columns.Select(c => c switch
        {
            "ra_prefixes" or "dns_aaaa" => $"array_to_string({c}, ',') AS {c}",
            "frag_more" or "dns_response" => $"CAST({c} AS VARCHAR) AS {c}",
            _ => $"CAST({c} AS VARCHAR) AS {c}",
        }));
        var jsonColumns = "{" + string.Join(", ", columns.Select(c => $"'{c}': 'VARCHAR'")) + "}";
        using var db = W.DuckDb();
        int compared = 0;
        foreach (var (sha, source) in corpus.Shas)
        {
            if (W.Ledger.GetCapture(sha)!.Status != RunLedger.Parsed)
                continue;
            var jsonl = Path.Combine(W.Root, sha + ".jsonl");
            using (var output = File.Create(jsonl))
            using (var error = new StringWriter())
                Assert.Equal(0, PcapCommands.Records(source, "jsonl", output, error));
            if (new FileInfo(jsonl).Length == 0)
                continue;
            var file = W.Lake.PerCaptureFile(LakeLayout.Packets, new DateOnly(2024, 5, 1), "probe-a", sha);
            var a = $"SELECT {parquetSide} FROM read_parquet({Workspace.Q(file)})";
            var b = $"SELECT {string.Join(", ", columns.Select(c => c is "frag_more" or "dns_response" ? $"lower({c}) AS {c}" : c))} FROM read_json({Workspace.Q(jsonl)}, format = 'newline_delimited', columns = {jsonColumns})";
            var onlyParquet = Workspace.Rows(db, $"({a}) EXCEPT ALL ({b})");
            var onlyJson = Workspace.Rows(db, $"({b}) EXCEPT ALL ({a})");
            if (onlyParquet.Count + onlyJson.Count > 0)
                Assert.Fail($"{source}: {onlyParquet.Count} rows only in Parquet, {onlyJson.Count} only in the records; first: {Describe(onlyParquet.Concat(onlyJson).First(), columns)}");
            compared++;
        }
        Assert.True(compared >= 40);
    }

    private static string Describe(object?[] row, string[] columns) =>
        string.Join(" ", row.Select((v, i) => $"{columns[i]}={v ?? "NULL"}"));

    [Fact]
    public void Manifest_metadata_is_in_every_row_and_the_captures_dataset_has_one_row_per_capture()
    {
        using var db = W.DuckDb();
        var packets = Path.Combine(W.Lake.Dataset(LakeLayout.Packets), "*", "*", "*.parquet");
        var rows = Workspace.Rows(db, $"""
            SELECT DISTINCT probe_id, labels, location_lat, location_lon, location_country, location_city, window_start_ns, window_end_ns, if_dropped, os_dropped, date, probe
            FROM read_parquet({Workspace.Q(packets)}, hive_partitioning = true)
            """);
        var row = Assert.Single(rows);
        Assert.Equal("probe-a", row[0]);
        Assert.Equal("rack=r1;site=lab", row[1]);
        Assert.Equal(48.1, row[2]);
        Assert.Equal(11.5, row[3]);
        Assert.Equal("DE", row[4]);
        Assert.Equal("Munich", row[5]);
        Assert.Equal(CaptureFile.At(10, 0, 0), row[6]);
        Assert.Equal(CaptureFile.At(11, 0, 0), row[7]);
        Assert.Equal(2L, row[8]);
        Assert.Equal(1L, row[9]);
        Assert.Equal(new DateOnly(2024, 5, 1), row[10]);
        Assert.Equal("probe-a", row[11]);

        var captures = Path.Combine(W.Lake.Dataset(LakeLayout.Captures), "*", "*", "*.parquet");
        var parsed = W.Ledger.Captures(RunLedger.Parsed);
        Assert.Equal(parsed.Count, Workspace.Scalar<long>(db, $"SELECT count(DISTINCT capture_sha256) FROM read_parquet({Workspace.Q(captures)})"));
        Assert.Equal(parsed.Sum(c => c.Frames!.Value), Workspace.Scalar<long>(db, $"SELECT sum(frames)::BIGINT FROM read_parquet({Workspace.Q(captures)})"));
        Assert.Equal(parsed.Count, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(captures)}) WHERE interface = 'eth0' AND filter = 'ip6 or proto 41' AND drop_source = 'manifest'"));
        // Every drop kind has its own column, as the probe's manifest counted it.
        Assert.Equal(parsed.Count, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(captures)}) WHERE (kernel_dropped, interface_dropped, queue_dropped, disk_dropped) = (1, 2, 2, 1)"));
    }
}

public class ParseBehaviourTests
{
    private static byte[] SmallCapture(int packets, int seed)
    {
        var file = new CaptureFile();
        for (int i = 0; i < packets; i++)
        {
            var udp = FrameBuilder.Udp((ushort)(1000 + seed), 53, FrameBuilder.DnsQuery($"host{i}.example.org", 28));
            file.Add(CaptureFile.At(10, 0, 0) + (i * 1_000_000_000L), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, udp)));
        }
        return file.ToArray();
    }

    private static Dictionary<string, byte[]> Snapshot(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllBytes);

    [Fact]
    public async Task Parsing_a_capture_again_leaves_one_file_with_the_same_bytes()
    {
        using var w = new Workspace();
        var sha = w.Store(SmallCapture(3000, 1)); // several row groups of 1024
        w.Store(SmallCapture(10, 2));
        await w.RunAsync(AggregatorStage.Parse);
        var first = Snapshot(w.LakeDirectory);
        Assert.Equal(2 * 3, first.Count); // per capture: its packets file, its captures row and its tracked connections

        // Forget everything the ledger knew, as after losing it: the same captures are parsed again.
        File.Delete(w.Ledger.Path);
        w.Restart();
        var report = await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(2, report.Inputs);
        var second = Snapshot(w.LakeDirectory);
        Assert.Equal(first.Keys.Order(), second.Keys.Order());
        foreach (var (name, bytes) in first)
            Assert.True(bytes.AsSpan().SequenceEqual(second[name]), name + " changed");
        Assert.Equal(3000, w.Ledger.GetCapture(sha)!.Frames);
    }

    [Fact]
    public async Task An_unreadable_capture_is_quarantined_and_the_others_are_parsed()
    {
        using var w = new Workspace();
        var good1 = w.Store(SmallCapture(5, 1));
        var garbage = w.Store(Encoding.ASCII.GetBytes("this is not a capture file at all, just text\n"));
        var whole = SmallCapture(50, 3);
        var cut = w.Store(whole[..(whole.Length - 30)]);
        var good2 = w.Store(SmallCapture(7, 4));

        var report = await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(4, report.Inputs);
        Assert.Equal(RunLedger.Parsed, w.Ledger.GetCapture(good1)!.Status);
        Assert.Equal(RunLedger.Parsed, w.Ledger.GetCapture(good2)!.Status);
        foreach (var bad in new[] { garbage, cut })
        {
            var state = w.Ledger.GetCapture(bad)!;
            Assert.Equal(RunLedger.Quarantined, state.Status);
            Assert.StartsWith("unreadable capture at offset", state.Reason, StringComparison.Ordinal);
            Assert.False(File.Exists(w.Lake.PerCaptureFile(LakeLayout.Packets, new DateOnly(2024, 5, 1), "probe-a", bad)));
        }
        // Nothing half-written is left beside the outputs.
        Assert.Empty(Directory.EnumerateFiles(w.LakeDirectory, ".*", SearchOption.AllDirectories));
        Assert.Equal(2, Directory.EnumerateFiles(w.Lake.Dataset(LakeLayout.Packets), "*.parquet", SearchOption.AllDirectories).Count());

        // A later run does not try them again.
        var again = await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(0, again.Inputs);
    }

    [Fact]
    public async Task A_failing_capture_is_retried_with_backoff_and_quarantined_after_the_last_attempt()
    {
        using var w = new Workspace(new() { ["Aggregator:MaxAttempts"] = "3", ["Aggregator:RetryBackoff"] = "00:10:00" });
        var sha = w.Store(SmallCapture(3, 1));
        // Another process holding an exclusive lock makes opening fail the way an I/O problem does.
        using var held = new FileStream(w.CapturePath(sha), FileMode.Open, FileAccess.ReadWrite, FileShare.None);

        await w.RunAsync(AggregatorStage.Parse);
        var state = w.Ledger.GetCapture(sha)!;
        Assert.Equal(RunLedger.Failed, state.Status);
        Assert.Equal(1, state.Attempts);
        Assert.Equal(w.Time.Now + TimeSpan.FromMinutes(10), state.NextAttemptAt);

        await w.RunAsync(AggregatorStage.Cleanup); // not due yet
        Assert.Equal(1, w.Ledger.GetCapture(sha)!.Attempts);

        w.Time.Now += TimeSpan.FromMinutes(11);
        await w.RunAsync(AggregatorStage.Cleanup);
        state = w.Ledger.GetCapture(sha)!;
        Assert.Equal((RunLedger.Failed, 2), (state.Status, state.Attempts));
        Assert.Equal(w.Time.Now + TimeSpan.FromMinutes(20), state.NextAttemptAt); // doubled

        w.Time.Now += TimeSpan.FromMinutes(21);
        await w.RunAsync(AggregatorStage.Cleanup);
        state = w.Ledger.GetCapture(sha)!;
        Assert.Equal((RunLedger.Quarantined, 3), (state.Status, state.Attempts));
        Assert.StartsWith("gave up after 3 attempts", state.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_capture_that_becomes_readable_is_parsed_by_the_retry()
    {
        using var w = new Workspace(new() { ["Aggregator:RetryBackoff"] = "00:01:00" });
        var sha = w.Store(SmallCapture(4, 1));
        using (new FileStream(w.CapturePath(sha), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            await w.RunAsync(AggregatorStage.Parse);
        Assert.Equal(RunLedger.Failed, w.Ledger.GetCapture(sha)!.Status);

        w.Time.Now += TimeSpan.FromMinutes(2);
        await w.RunAsync(AggregatorStage.Cleanup);
        var state = w.Ledger.GetCapture(sha)!;
        Assert.Equal((RunLedger.Parsed, 2, 4L), (state.Status, state.Attempts, state.Frames));
    }

    /// <summary>The server's manifest as servers wrote it before version 2: no labels or location of its own, the probe's manifest (or anything) nested.</summary>
    private static string ManifestBeforeVersion2(string sha, string probeManifest) => $$"""
        {
          "sha256": "{{sha}}",
          "probe_id": "probe-a",
          "size": 1234,
          "format": "pcapng",
          "window_start": "2024-05-01T10:00:00+00:00",
          "window_end": "2024-05-01T10:05:00.1234567+00:00",
          "received_at": "2024-05-01T10:06:03.52+00:00",
          "probe_manifest": {{probeManifest}}
        }
        """;

    [Fact]
    public async Task Without_a_probe_manifest_drops_come_from_the_capture_statistics_and_the_rest_from_its_metadata()
    {
        using var w = new Workspace();
        var bytes = new CaptureFile()
            .Metadata("probe_id", "someone-else")
            .Metadata("labels", "site=attic")
            .Metadata("location", "52.5,13.4,DE,Berlin")
            .Add(CaptureFile.At(10, 0, 0), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(128, 0, new byte[8]))))
            .Statistics(new PcapngInterfaceStatistics { InterfaceReceived = 100, InterfaceDropped = 7, OsDropped = 2, Comment = PcapngMetadata.FormatDrops(3, 4) })
            .ToArray();
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        // `probe upload FILE` stored no probe manifest before it built one.
        w.Store(bytes, manifestJson: ManifestBeforeVersion2(sha, "null"));
        await w.RunAsync(AggregatorStage.Parse);

        using var db = w.DuckDb();
        var file = w.Lake.PerCaptureFile(LakeLayout.Packets, new DateOnly(2024, 5, 1), "probe-a", sha);
        var row = Workspace.Rows(db, $"SELECT probe_id, labels, location_city, location_lat, if_dropped, os_dropped, window_start_ns FROM read_parquet({Workspace.Q(file)})").Single();
        // The folder (the certificate's probe id) wins over what the file claims; the rest comes from the file's metadata.
        Assert.Equal(["probe-a", "site=attic", "Berlin", 52.5, 7L, 2L, CaptureFile.At(10, 0, 0)], row);
        var captures = w.Lake.PerCaptureFile(LakeLayout.Captures, new DateOnly(2024, 5, 1), "probe-a", sha);
        Assert.Equal(["isb", 100L, 2L, 7L, 3L, 4L], Workspace.Rows(db,
            $"SELECT drop_source, if_received, kernel_dropped, interface_dropped, queue_dropped, disk_dropped FROM read_parquet({Workspace.Q(captures)})").Single());
    }

    [Fact]
    public async Task A_capture_stored_before_version_2_is_read_with_its_probe_manifests_drops_window_labels_and_location()
    {
        using var w = new Workspace();
        var bytes = new CaptureFile()
            .Add(CaptureFile.At(10, 0, 1), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(128, 0, new byte[8]))))
            .Statistics(new PcapngInterfaceStatistics { InterfaceReceived = 1, InterfaceDropped = 0, OsDropped = 0 })
            .ToArray();
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        // Exactly what `probe run` wrote beside its files and servers stored until now.
        var probeManifest = $$"""
            {
              "manifest_version": 1, "file": "20240501T100000Z-000042.pcapng", "sha256": "{{sha}}", "size": {{bytes.Length}}, "sequence": 42,
              "probe_id": "p-abcdefghijkl", "hostname": "probe1", "version": "0.1.0",
              "labels": { "site": "fra", "rack": "r7" }, "location": "50.11,8.68,DE,Frankfurt am Main",
              "capture_start": "2024-05-01T09:00:00.000000000Z",
              "window_start": "2024-05-01T09:59:58.000000001Z", "window_end": "2024-05-01T10:04:59.999999999Z",
              "first_frame": "2024-05-01T10:00:01.000000000Z", "last_frame": "2024-05-01T10:00:01.000000000Z",
              "frames": 1, "interface": "eth0", "filter": "ip6 or (ip proto 41) or (udp port 3544)", "snaplen": 262144,
              "received": 12,
              "drops": { "kernel": 3, "interface": 1, "queue": 5, "disk": 7 },
              "close_reason": "age", "repaired": false,
              "interfaces": [ { "id": 0, "name": "eth0", "link_type": 1, "snaplen": 262144, "filter": "ip6", "frames": 1,
                                "received": 12, "kernel_dropped": 3, "interface_dropped": 1, "queue_dropped": 5, "disk_dropped": 7 } ]
            }
            """;
        w.Store(bytes, manifestJson: ManifestBeforeVersion2(sha, probeManifest));
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        using var db = w.DuckDb();
        var captures = w.Lake.PerCaptureFile(LakeLayout.Captures, new DateOnly(2024, 5, 1), "probe-a", sha);
        Assert.Equal(["probe-a", "probe1", "rack=r7;site=fra", 50.11, 8.68, "DE", "Frankfurt am Main", CaptureFile.At(9, 59, 58, 1), CaptureFile.At(10, 4, 59, 999_999_999),
                CaptureFile.At(10, 6, 3, 520_000_000), "eth0", 1L, 12L, 3L, 1L, 5L, 7L, "manifest"],
            Workspace.Rows(db, $"""
                SELECT probe_id, hostname, labels, location_lat, location_lon, location_country, location_city, window_start_ns, window_end_ns,
                    received_at_ns, interface, manifest_frames, if_received, kernel_dropped, interface_dropped, queue_dropped, disk_dropped, drop_source
                FROM read_parquet({Workspace.Q(captures)})
                """).Single());
        var summary = Workspace.Q(Path.Combine(w.Lake.Dataset(LakeLayout.Summary), "*", "*.parquet"));
        Assert.Equal([1L, 16L, 1.0 / 17], Workspace.Rows(db, $"SELECT frames, dropped, completeness FROM read_parquet({summary})").Single());
    }

    [Fact]
    public async Task Captures_rows_written_before_each_drop_kind_had_a_column_still_count_in_the_summary()
    {
        using var w = new Workspace();
        byte[] Capture(int second) => new CaptureFile().Add(CaptureFile.At(10, 0, second), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(59, []))).ToArray();
        var old = w.Store(Capture(0));
        w.Store(Capture(1));
        var oldAlone = w.Store(Capture(2), date: "2024-05-02");
        await w.RunAsync(AggregatorStage.Parse);
        using var db = w.DuckDb();

        // Rewrite captures rows as the parse stage wrote them before: the interface and kernel drops as if_dropped and
        // os_dropped, queue and disk drops not at all, and a probe_dropped column.
        foreach (var (sha, date) in new[] { (old, new DateOnly(2024, 5, 1)), (oldAlone, new DateOnly(2024, 5, 2)) })
        {
            var path = w.Lake.PerCaptureFile(LakeLayout.Captures, date, "probe-a", sha);
            Workspace.Rows(db, $"""
                COPY (SELECT * EXCLUDE (kernel_dropped, interface_dropped, queue_dropped, disk_dropped),
                        interface_dropped AS if_dropped, kernel_dropped AS os_dropped, CAST(NULL AS BIGINT) AS probe_dropped
                      FROM read_parquet({Workspace.Q(path)})) TO {Workspace.Q(path + ".old")} (FORMAT parquet)
                """);
            File.Move(path + ".old", path, overwrite: true);
        }

        await w.RunAsync(AggregatorStage.Aggregate);
        var summary = Workspace.Q(Path.Combine(w.Lake.Dataset(LakeLayout.Summary), "*", "*.parquet"));
        // Old rows count what they have (kernel 1 + interface 2), new ones every kind (6): with new rows on 1 May, alone on 2 May.
        Assert.Equal(
            [[new DateOnly(2024, 5, 1), 2L, 3L + 6L], [new DateOnly(2024, 5, 2), 1L, 3L]],
            Workspace.Rows(db, $"SELECT date, CAST(sum(frames) AS BIGINT), CAST(sum(dropped) AS BIGINT) FROM read_parquet({summary}, hive_partitioning = true) GROUP BY date ORDER BY date"));
    }

    [Fact]
    public async Task Packets_files_read_the_same_in_an_independent_parquet_reader()
    {
        using var w = new Workspace(new() { ["Aggregator:RowGroupSize"] = "5000" });
        var file = new CaptureFile();
        // Several row groups, and a row group that grows its buffers past the initial size.
        for (int i = 0; i < 11_000; i++)
        {
            var udp = FrameBuilder.Udp((ushort)(1000 + (i % 7)), 53, FrameBuilder.DnsAaaaResponse($"h{i % 300}.example", 0, Ipv6Address.Parse($"2001:db8::{i % 50:x}")));
            file.Add(CaptureFile.At(12, 0, 0) + i, FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, udp, hopLimit: (byte)(i % 3 == 0 ? 64 : 255))));
        }
        var sha = w.Store(file.ToArray());
        await w.RunAsync(AggregatorStage.Parse);
        var path = w.Lake.PerCaptureFile(LakeLayout.Packets, new DateOnly(2024, 5, 1), "probe-a", sha);

        await using var stream = File.OpenRead(path);
        var parsed = await global::Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(stream);
        Assert.Equal(11_000, parsed.Data.Count);
        using var db = w.DuckDb();
        var expected = Workspace.Rows(db, $"SELECT time_epoch_ns, hop_limit, dns_qname, array_to_string(dns_aaaa, ','), flow_src, frag_id, labels FROM read_parquet({Workspace.Q(path)})");
        for (int i = 0; i < parsed.Data.Count; i += 97)
        {
            var row = parsed.Data[i];
            Assert.Equal(expected[i][0], row["time_epoch_ns"]);
            // The typed time reads as the same instant, to the microsecond.
            Assert.Equal(DateTime.UnixEpoch.AddTicks((long)expected[i][0]! / 1000 * TimeSpan.TicksPerMicrosecond), row["ts"]);
            Assert.Equal(expected[i][1], row["hop_limit"]);
            Assert.Equal(expected[i][2], row["dns_qname"]);
            Assert.Equal(expected[i][3], string.Join(',', ((System.Collections.IEnumerable)row["dns_aaaa"]!).Cast<object>()));
            Assert.Equal(expected[i][4], row["flow_src"]);
            Assert.Null(row.TryGetValue("frag_id", out var fragId) ? fragId : null); // absent means null there
            Assert.Equal("rack=r1;site=lab", row["labels"]);
        }
        Assert.Equal(CaptureFile.At(12, 0, 0), expected[0][0]);
        Assert.Equal("2001:db8::1", expected[1][3]);
    }

    [Fact]
    public async Task A_backlog_is_taken_in_batches()
    {
        using var w = new Workspace(new() { ["Aggregator:ParseBatchSize"] = "2" });
        for (int i = 0; i < 3; i++)
            w.Store(SmallCapture(2, i));
        Assert.Equal(2, (await w.RunAsync(AggregatorStage.Parse)).Inputs);
        Assert.Equal(1, (await w.RunAsync(AggregatorStage.Parse)).Inputs);
        Assert.Equal(0, (await w.RunAsync(AggregatorStage.Parse)).Inputs);
    }

    [Fact]
    public async Task Cleanup_forgets_runs_that_did_nothing_after_a_week()
    {
        using var w = new Workspace();
        await w.RunAsync(AggregatorStage.Parse); // nothing stored yet
        w.Store(SmallCapture(2, 1));
        await w.RunAsync(AggregatorStage.Parse);
        w.Time.Now += TimeSpan.FromDays(8);
        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.Equal(["cleanup", "parse"], w.Ledger.RecentRuns(10).Select(r => r.Stage));
        Assert.Equal(1, w.Ledger.RecentRuns(10).Single(r => r.Stage == "parse").Inputs);
    }

    [Fact]
    public void Prefix_text_is_rfc5952()
    {
        Assert.Equal("2001:db8:1::/48", Aggregate.Ipv6Functions.Prefix(Ipv6Address.Parse("2001:db8:1:2:3::1"), 48));
        Assert.Equal("2001:db8::/48", Aggregate.Ipv6Functions.Prefix(Ipv6Address.Parse("2001:db8:0:ffff::1"), 48));
        Assert.Equal("::/32", Aggregate.Ipv6Functions.Prefix(Ipv6Address.Parse("0:0:1::1"), 32));
        Assert.Equal("fe80::/64", Aggregate.Ipv6Functions.Prefix(Ipv6Address.Parse("fe80::1:2:3:4"), 64));
    }
}

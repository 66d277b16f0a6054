using System.Buffers.Binary;
using DuckDB.NET.Data;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Tests;

/// <summary>Hand-built captures whose datasets can be counted by hand.</summary>
public class AggregateTests
{
    private static readonly Ipv6Address A = Ipv6Address.Parse("2001:db8:1::1");
    private static readonly Ipv6Address B = Ipv6Address.Parse("2001:db8:2::211:22ff:fe33:4455");
    private static readonly Ipv6Address C = Ipv6Address.Parse("2002:c000:201::1");
    private static readonly Ipv6Address R = Ipv6Address.Parse("2001:db8:53::53");
    private static readonly Ipv6Address Router = Ipv6Address.Parse("fe80::1");
    private static readonly Ipv6Address AllNodes = Ipv6Address.Parse("ff02::1");

    private static byte[] Tcp(Ipv6Address s, Ipv6Address d, ushort sp, ushort dp, ushort flags) =>
        FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, FrameBuilder.Tcp(sp, dp, flags), s, d));

    private static byte[] Udp(Ipv6Address s, Ipv6Address d, ushort sp, ushort dp, byte[] payload) =>
        FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, FrameBuilder.Udp(sp, dp, payload), s, d));

    private static byte[] RouterAdvertisement()
    {
        var body = new byte[12 + 32];
        body[0] = 64;
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), 1800);
        body[12] = 3;       // Prefix Information
        body[13] = 4;       // 32 bytes
        body[14] = 64;      // prefix length
        body[15] = 0xC0;
        Ipv6Address.Parse("2001:db8:1::").Write(body.AsSpan(28));
        return FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(134, 0, body), Router, AllNodes, hopLimit: 255));
    }

    private static byte[] BadTcp()
    {
        var segment = FrameBuilder.Tcp(40001, 80, 0x010);
        segment[12] = 2 << 4; // data offset 2 words: shorter than a TCP header
        return FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(6, segment, A, B));
    }

    private static readonly long T0 = CaptureFile.At(10, 0, 0);

    private static long T(int seconds) => T0 + (seconds * 1_000_000_000L);

    /// <summary>probe-a's first capture: a TCP exchange, DNS, router adverts, an echo request, a malformed segment, IPv4.</summary>
    internal static byte[] First() => new CaptureFile()
        .Add(T(0), Tcp(A, B, 40000, 443, 0x002))
        .Add(T(1), Tcp(B, A, 443, 40000, 0x012))
        .Add(T(2), Tcp(A, B, 40000, 443, 0x010))
        .Add(T(3), Tcp(A, B, 40000, 443, 0x011))
        .Add(T(4), Udp(A, R, 50000, 53, FrameBuilder.DnsQuery("example.org", 28)))
        .Add(T(5), Udp(R, A, 53, 50000, FrameBuilder.DnsAaaaResponse("example.org", 0, B, Ipv6Address.Parse("2001:db8:2::2"))))
        .Add(T(6), Udp(C, R, 50001, 53, FrameBuilder.DnsQuery("example.org", 28)))
        .Add(T(7), RouterAdvertisement())
        .Add(T(607), RouterAdvertisement())
        .Add(T(8), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(58, FrameBuilder.Icmpv6(128, 0, new byte[8]), A, B)))
        .Add(T(9), BadTcp())
        .Add(T(10), FrameBuilder.Ethernet(0x0800, FrameBuilder.Ipv4(17, FrameBuilder.Udp(5000, 53, new byte[12]))))
        .ToArray();

    /// <summary>probe-a's second capture overlaps the first: it repeats the SYN exactly, then one more ACK.</summary>
    internal static byte[] Second() => new CaptureFile()
        .Add(T(0), Tcp(A, B, 40000, 443, 0x002))
        .Add(T(1800), Tcp(A, B, 40000, 443, 0x010))
        .ToArray();

    /// <summary>probe-b saw the very same SYN: a different vantage point, so not a duplicate.</summary>
    internal static byte[] Third() => new CaptureFile().Add(T(0), Tcp(A, B, 40000, 443, 0x002)).ToArray();

    internal static async Task<Workspace> BuildAsync(Dictionary<string, string?>? settings = null)
    {
        var w = new Workspace(settings);
        w.Store(First());
        w.Store(Second());
        w.Store(Third(), probe: "probe-b");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        return w;
    }

    private static string Glob(Workspace w, string dataset) =>
        Workspace.Q(Path.Combine(w.Lake.Dataset(dataset), LakeLayout.HasProbeFolders(dataset) ? Path.Combine("*", "*", "*.parquet") : Path.Combine("*", "*.parquet")));

    [Fact]
    public async Task Flows_are_counted_after_dropping_exact_duplicates_within_a_probe()
    {
        using var w = await BuildAsync();
        using var db = w.DuckDb();
        var flows = Workspace.Rows(db, $"""
            SELECT probe_id, flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, encapsulation, packets, bytes, tcp_flags,
                   first_seen_ns, last_seen_ns, captures, malformed_packets
            FROM read_parquet({Glob(w, LakeLayout.Flows)})
            """);
        var handshake = flows.Single(f => (string)f[0]! == "probe-a" && (string)f[1]! == A.ToString() && Equals(f[5], (ushort)443));
        Assert.Equal(4L, handshake[7]);                        // SYN, ACK, FIN+ACK and the later ACK; the repeated SYN is gone
        Assert.Equal(4L * 74, handshake[8]);                   // Ethernet 14 + IPv6 40 + TCP 20
        Assert.Equal((ushort)0x013, handshake[9]);             // SYN | ACK | FIN
        Assert.Equal(T(0), handshake[10]);
        Assert.Equal(T(1800), handshake[11]);
        Assert.Equal(2L, handshake[12]);
        Assert.Equal("native", handshake[6]);

        var reply = flows.Single(f => (string)f[1]! == B.ToString() && Equals(f[3], (byte)6));
        Assert.Equal((1L, (ushort)0x012), (reply[7], reply[9]));

        var atB = flows.Single(f => (string)f[0]! == "probe-b");
        Assert.Equal(1L, atB[7]);                              // the same SYN counts once at each probe

        Assert.Equal(1L, flows.Sum(f => (long)f[13]!));        // the bad TCP segment
        Assert.Equal(2L, flows.Single(f => (string)f[1]! == Router.ToString())[7]);
        Assert.Equal(9, flows.Count);
    }

    [Fact]
    public async Task Dns_counts_clients_servers_and_aaaa_answers()
    {
        using var w = await BuildAsync();
        using var db = w.DuckDb();
        var rows = Workspace.Rows(db, $"""
            SELECT transport, qname, qtype, rcode, messages, queries, responses, clients, servers, aaaa_records, array_to_string(aaaa, ' '), array_to_string(probes, ' ')
            FROM read_parquet({Glob(w, LakeLayout.Dns)}) WHERE qname = 'example.org' ORDER BY rcode NULLS FIRST
            """);
        Assert.Equal(2, rows.Count);
        Assert.Equal(["dns", "example.org", (ushort)28, null, 2L, 2L, 0L, 2L, 1L, 0L, "", "probe-a"], rows[0]);
        Assert.Equal(["dns", "example.org", (ushort)28, (byte)0, 1L, 0L, 1L, 1L, 1L, 2L, "2001:db8:2:0:211:22ff:fe33:4455 2001:db8:2::2", "probe-a"], rows[1]);
    }

    [Fact]
    public async Task Icmpv6_counts_types_and_lists_routers_with_their_prefixes()
    {
        using var w = await BuildAsync();
        using var db = w.DuckDb();
        var types = Workspace.Rows(db, $"SELECT type, code, type_name, packets, sources, destinations FROM read_parquet({Glob(w, LakeLayout.Icmpv6)}) ORDER BY type");
        Assert.Equal([(byte)128, (byte)0, "echo-request(128)", 1L, 1L, 1L], types[0]);
        Assert.Equal([(byte)134, (byte)0, "router-advertisement(134)", 2L, 1L, 1L], types[1]);
        Assert.Equal(2, types.Count);

        var routers = Workspace.Rows(db, $"SELECT probe_id, router, advertisements, array_to_string(prefixes, ' '), first_seen_ns, last_seen_ns FROM read_parquet({Glob(w, LakeLayout.Icmpv6Routers)})");
        Assert.Equal(["probe-a", "fe80::1", 2L, "2001:db8:1::/64", T(7), T(607)], Assert.Single(routers));
    }

    [Fact]
    public async Task Addresses_and_prefixes_carry_classes_and_what_addresses_embed()
    {
        using var w = await BuildAsync();
        using var db = w.DuckDb();
        var addresses = Workspace.Rows(db, $"""
            SELECT address, prefix48, prefix64, type, iid_class, embedded_ipv4, mac, packets_as_src, packets_as_dst, array_to_string(probes, ' '), probe_count
            FROM read_parquet({Glob(w, LakeLayout.Addresses)})
            """).ToDictionary(r => (string)r[0]!);
        Assert.Equal(6, addresses.Count); // A, B, C, R, the router, all-nodes, and nothing from IPv4 or AAAA answers
        Assert.Equal(["2001:db8:1::1", "2001:db8:1::/48", "2001:db8:1::/64", "documentation", "low-byte", null, null, 8L, 2L, "probe-a probe-b", 2L], addresses[A.ToString()]);
        Assert.Equal("00:11:22:33:44:55", addresses[B.ToString()][6]);
        Assert.Equal("ieee-derived", addresses[B.ToString()][4]);
        Assert.Equal(("6to4", "192.0.2.1"), (addresses[C.ToString()][3], addresses[C.ToString()][5]));
        Assert.Equal(("multicast", null), (addresses[AllNodes.ToString()][3], addresses[AllNodes.ToString()][4]));

        var p32 = Workspace.Rows(db, $"SELECT addresses, packets_as_src, iid_mix['ieee-derived'], iid_mix['low-byte'], iid_mix['embedded-port'], array_to_string(probes, ' ') FROM read_parquet({Glob(w, LakeLayout.Prefixes)}) WHERE prefix = '2001:db8::/32'").Single();
        // A, B and R (whose ::53 reads as the DNS port); A sends 8 (7 at probe-a, 1 at probe-b), B and R one each. The
        // prefix's probes are its addresses' probes, each once, sorted.
        Assert.Equal([3L, 8L + 1L + 1L, 1UL, 1UL, 1UL, "probe-a probe-b"], p32);
        Assert.Equal(3L, Workspace.Scalar<long>(db, $"SELECT count(DISTINCT prefix_len) FROM read_parquet({Glob(w, LakeLayout.Prefixes)})"));
    }

    [Fact]
    public async Task Summary_counts_protocols_duplicates_drops_and_coverage_per_probe_and_hour()
    {
        using var w = await BuildAsync();
        using var db = w.DuckDb();
        var a = Workspace.Rows(db, $"""
            SELECT captures, frames, duplicates, packets, ipv6_packets, non_ipv6_packets, tcp_packets, udp_packets, icmpv6_packets,
                   dns_messages, malformed_packets, dropped, completeness, coverage, hour
            FROM read_parquet({Glob(w, LakeLayout.Summary)}) WHERE probe_id = 'probe-a'
            """).Single();
        // DNS messages include the one over IPv4 (UDP port 53).
        Assert.Equal([2L, 14L, 1L, 13L, 12L, 1L, 6L, 3L, 3L, 4L, 1L, 12L, 14.0 / 26, 1.0, new DateTime(2024, 5, 1, 10, 0, 0)], a);
        var b = Workspace.Rows(db, $"SELECT frames, duplicates, dropped FROM read_parquet({Glob(w, LakeLayout.Summary)}) WHERE probe_id = 'probe-b'").Single();
        Assert.Equal([1L, 0L, 6L], b);
    }

    [Fact]
    public async Task An_open_day_waits_for_its_grace_period_unless_asked()
    {
        using var w = new Workspace(new() { ["Aggregator:PartitionGrace"] = "06:00:00" });
        w.Store(First());
        w.Time.Now = new DateTimeOffset(2024, 5, 2, 5, 0, 0, TimeSpan.Zero);
        await w.RunAsync(AggregatorStage.Parse);
        var report = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(0, report.Outputs);
        Assert.False(Directory.Exists(w.Lake.Dataset(LakeLayout.Flows)));

        w.Time.Now = new DateTimeOffset(2024, 5, 2, 6, 0, 0, TimeSpan.Zero);
        report = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(LakeLayout.AggregateDatasets.Count, report.Outputs);
    }

    [Fact]
    public async Task A_date_is_rebuilt_only_when_its_packets_change()
    {
        using var w = await BuildAsync();
        var date = new DateOnly(2024, 5, 1);
        var flows = w.Lake.PartitionGlob(LakeLayout.Flows, date);
        string Files() => string.Join('\n', Directory.EnumerateFiles(w.Lake.DatePartition(LakeLayout.Flows, date), "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        var before = Files();

        var unchanged = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(0, unchanged.Outputs);

        // A late upload for the same day: the partition is rebuilt and swapped whole.
        w.Store(new CaptureFile().Add(T(3000), Tcp(C, B, 1234, 80, 0x002)).ToArray());
        await w.RunAsync(AggregatorStage.Parse);
        var rebuilt = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(LakeLayout.AggregateDatasets.Count, rebuilt.Outputs);
        using var db = w.DuckDb();
        Assert.Equal(10L, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(flows)})"));
        Assert.NotEqual(before, Files());
        Assert.DoesNotContain(Directory.EnumerateFiles(w.Lake.Staging, "*", SearchOption.AllDirectories), e => !e.Contains("duckdb", StringComparison.Ordinal));
    }

    [Fact]
    public async Task After_a_crash_the_stages_give_the_same_outputs_and_leftovers_stay_invisible()
    {
        using var w = await BuildAsync();
        static Dictionary<string, byte[]> Outputs(Workspace w) => Directory
            .EnumerateFiles(w.LakeDirectory, "*.parquet", SearchOption.AllDirectories)
            .Where(f => !f.StartsWith(w.Lake.Staging, StringComparison.Ordinal) && !f.StartsWith(w.Lake.Partials, StringComparison.Ordinal))
            .ToDictionary(f => Path.GetRelativePath(w.LakeDirectory, f), File.ReadAllBytes);
        var clean = Outputs(w);
        // Per capture its packets file, its captures row and its tracked connections; then each dataset, but flows has one
        // file per probe (2) and connections one per probe and hour (2).
        Assert.Equal(3 * 3 + (LakeLayout.AggregateDatasets.Count - 2) + 2 + 2, clean.Count);

        // The state a crash leaves: no lake, no ledger, a half-written packets file and a half-built partition.
        Directory.Delete(w.LakeDirectory, recursive: true);
        File.Delete(w.Ledger.Path);
        w.Restart();
        var (packetsName, packetsBytes) = clean.First(kv => kv.Key.StartsWith("packets", StringComparison.Ordinal));
        var packetsPath = Path.Combine(w.LakeDirectory, packetsName);
        Directory.CreateDirectory(Path.GetDirectoryName(packetsPath)!);
        var halfFile = LakeLayout.TempPathFor(packetsPath, "crashedrun");
        File.WriteAllBytes(halfFile, packetsBytes[..(packetsBytes.Length / 2)]);
        var halfPartition = Path.Combine(w.Lake.Staging, "aggregate", "crashedrun", "date=2024-05-01", "flows");
        Directory.CreateDirectory(halfPartition);
        File.WriteAllBytes(Path.Combine(halfPartition, "data.parquet"), [1, 2, 3]);
        var crashedRun = w.Ledger.StartRun("parse");
        // Crashed long enough ago for cleanup to take them (TempFileMaxAge).
        var crashedAt = w.Time.Now.UtcDateTime - TimeSpan.FromHours(2);
        File.SetLastWriteTimeUtc(halfFile, crashedAt);
        File.SetLastWriteTimeUtc(Path.Combine(halfPartition, "data.parquet"), crashedAt);

        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        var again = Outputs(w);
        Assert.Equal(clean.Keys.Order(), again.Keys.Order());
        foreach (var (name, bytes) in clean)
            Assert.True(bytes.AsSpan().SequenceEqual(again[name]), name + " differs after the re-run");

        // The leftover is hidden from readers: every visible file reads.
        Assert.True(File.Exists(halfFile));
        using var db = w.DuckDb();
        foreach (var dataset in LakeLayout.AllDatasets)
        {
            var glob = Path.Combine(w.Lake.Dataset(dataset), LakeLayout.HasProbeFolders(dataset) ? Path.Combine("*", "*", "*.parquet") : Path.Combine("*", "*.parquet"));
            Assert.True(Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(glob)}, hive_partitioning = true)") > 0, dataset);
        }

        await w.RunAsync(AggregatorStage.Cleanup);
        Assert.False(File.Exists(halfFile));
        Assert.False(Directory.Exists(halfPartition));
        Assert.Equal("abandoned", w.Ledger.RecentRuns(20).Single(r => r.RunId == crashedRun).Status);
    }

    [Fact]
    public async Task The_ledger_records_each_run_with_its_files()
    {
        using var w = await BuildAsync();
        var runs = w.Ledger.RecentRuns(10);
        var parse = runs.Single(r => r.Stage == "parse");
        Assert.Equal(("succeeded", 3L, 6L, 12L + 2L + 1L + 3L), (parse.Status, parse.Inputs, parse.Outputs, parse.Rows)); // frames, then one captures row each
        Assert.NotNull(parse.DurationMs);
        var aggregate = runs.Single(r => r.Stage == "aggregate");
        Assert.Equal((3L, (long)LakeLayout.AggregateDatasets.Count), (aggregate.Inputs, aggregate.Outputs));
        var files = w.Ledger.RunFiles(aggregate.RunId);
        Assert.Equal(3, files.Count(f => f.Direction == "input"));
        Assert.Contains(files, f => f.Direction == "output" && f.Path.EndsWith(Path.Combine("flows", "date=2024-05-01"), StringComparison.Ordinal) && f.Rows == 9);
        Assert.Equal(1, w.Ledger.SchemaVersion);
        var partition = Assert.Single(w.Ledger.Partitions());
        Assert.Equal(3, partition.Inputs);
    }
}

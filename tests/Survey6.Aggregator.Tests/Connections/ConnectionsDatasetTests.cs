using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Packets.Addresses;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Aggregator.Tests.Connections;

/// <summary>
/// The <c>connections</c> dataset as the aggregate stage writes it: from stored captures through parse and aggregate,
/// read back from the lake.
/// </summary>
public class ConnectionsDatasetTests
{
    private static readonly DateOnly Date = new(2024, 5, 1);
    private static readonly Ipv6Address Client = Ipv6Address.Parse("2001:db8:1::10");
    private static readonly Ipv6Address Router = Ipv6Address.Parse("2001:db8:ff::1");

    private const string Columns = "proto, orig_h, orig_p, resp_h, resp_p, orig_pkts, resp_pkts, conn_state, history";

    private static List<object?[]> Connections(Workspace w, string where = "true")
    {
        using var db = w.DuckDb();
        var file = w.Lake.PartitionGlob(LakeLayout.Connections, Date);
        return Workspace.Rows(db, $"SELECT {Columns} FROM read_parquet({Workspace.Q(file)}) WHERE {where} ORDER BY ts_ns, uid");
    }

    private static ConversationTests.Counted Counted(object?[] row) =>
        new((string)row[0]!, (string)row[1]!, (ushort)row[2]!, (string)row[3]!, (ushort)row[4]!, (long)row[5]!, (long)row[6]!);

    /// <summary>
    /// Real captures, each as its own probe: an FTP session over IPv6, DNS over UDP and TCP, a web session with UDP,
    /// and two ICMPv6 errors that quote a UDP datagram or a TCP segment. tshark counts no conversation for a quoted
    /// packet, and neither does the lake: those captures have ICMP connections only.
    /// </summary>
    [Fact]
    public async Task Per_direction_packets_of_the_lake_match_tsharks_conversations_and_quoted_packets_are_not_counted()
    {
        using var w = new Workspace();
        var captures = new (string Probe, string Path)[]
        {
            ("ftp", "zeek/ftp/ipv6.pcap"),
            ("dns", "zeek/dns-edns-ecs.pcap"),
            ("web", "zeek/wikipedia-filtered-plus-udp.pcap"),
            ("toobig", "zeek/icmp/icmp6-toobig.pcap"),
            ("unreach", "zeek/icmp/icmp6-destunreach-ip6ext-udp.pcap"),
        };
        foreach (var (probe, path) in captures)
            w.Store(File.ReadAllBytes(TestData.Capture(path)), probe);
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        var compared = captures.ToDictionary(c => c.Probe,
            c => ConversationTests.CompareWithTshark(TestData.Capture(c.Path), Connections(w, $"probe_id = '{c.Probe}'").Select(Counted)));
        Assert.Equal(6, compared["ftp"]);
        Assert.True(compared.Values.Sum() >= 30, string.Join(", ", compared));

        foreach (var probe in new[] { "toobig", "unreach" })
        {
            var rows = Connections(w, $"probe_id = '{probe}'");
            Assert.NotEmpty(rows);
            Assert.All(rows, r => Assert.Equal("icmp", r[0]));
            Assert.Contains(rows, r => (ushort)r[2]! is 1 or 2);
        }
    }

    [Fact]
    public async Task An_icmpv6_error_quoting_a_segment_leaves_its_connection_alone_in_the_lake()
    {
        var exchange = ConversationTests.Exchange();
        var withError = new List<(long Time, byte[] Frame)>(exchange);
        withError.Insert(4, (exchange[3].Time + 500, Ethernet(0x86DD, Ipv6(58, Icmpv6(2, 0, [0, 0, 5, 0, .. exchange[3].Frame[14..]]), Router, Client))));
        using var w = new Workspace();
        w.Store(ConversationTests.Write(withError));
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        var rows = Connections(w);
        Assert.Equal(2, rows.Count);
        Assert.Equal(["tcp", Client.ToString(), (ushort)50000, "2001:db8:2::20", (ushort)443, 5L, 4L, "SF", "ShADadFf"], rows[0]);
        Assert.Equal(["icmp", Router.ToString(), (ushort)2, Client.ToString(), (ushort)0, 1L, 0L, "OTH", null], rows[1]);
    }

    /// <summary>
    /// One TCP connection split over two captures of a probe that arrive in two runs: the second run joins it to the
    /// first capture's part (from the partials alone), and a rebuild of the date gives the same row.
    /// </summary>
    [Fact]
    public async Task A_connection_split_over_captures_arriving_in_two_runs_is_one_row()
    {
        var exchange = ConversationTests.Exchange();
        using var w = new Workspace();
        w.Store(ConversationTests.Write(exchange[..4]));
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        var first = Assert.Single(Connections(w));
        Assert.Equal((3L, 1L, "S1"), ((long)first[5]!, (long)first[6]!, (string)first[7]!));

        w.Store(ConversationTests.Write(exchange[4..]));
        await w.RunAsync(AggregatorStage.Parse);
        var late = await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(1, late.Inputs);
        await AssertJoinedNowAndAfterRebuildAsync(w);
    }

    /// <summary>The exchange's one connection is in the lake, and again after a rebuild of the date.</summary>
    private static async Task AssertJoinedNowAndAfterRebuildAsync(Workspace w)
    {
        object?[] expected = ["tcp", Client.ToString(), (ushort)50000, "2001:db8:2::20", (ushort)443, 5L, 4L, "SF", "ShADadFf"];
        Assert.Equal(expected, Assert.Single(Connections(w)));
        var rebuilt = await w.Runner.RebuildAsync(Date, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.True(rebuilt!.Succeeded, rebuilt.Error);
        Assert.Equal(expected, Assert.Single(Connections(w)));
    }

    /// <summary>
    /// The parse stage tracks connections from its own dissection: once parsed, the stored captures can go (retention)
    /// and the aggregate stage still joins a connection split over two of them, in a run and in a rebuild.
    /// </summary>
    [Fact]
    public async Task Connections_need_no_stored_capture_after_parsing()
    {
        var exchange = ConversationTests.Exchange();
        using var w = new Workspace();
        w.Store(ConversationTests.Write(exchange[..4]));
        w.Store(ConversationTests.Write(exchange[4..]));
        await w.RunAsync(AggregatorStage.Parse);
        var fragments = Directory.GetFiles(Path.Combine(w.LakeDirectory, ".connections"), "*.parquet", SearchOption.AllDirectories);
        Assert.Equal(2, fragments.Length);
        foreach (var stored in Directory.GetFiles(Path.Combine(w.DataDirectory, "captures"), "*.pcapng", SearchOption.AllDirectories))
            File.Delete(stored);

        await w.RunAsync(AggregatorStage.Aggregate);
        await AssertJoinedNowAndAfterRebuildAsync(w);
    }

    /// <summary>
    /// A fragments file that is damaged is not used: the operator reads a warning naming the file and why, the file is
    /// left where it is, and the capture's connections are tracked again from its stored capture, so nothing is lost.
    /// </summary>
    [Fact]
    public async Task A_damaged_fragments_file_is_named_and_tracked_again_from_the_stored_capture()
    {
        var exchange = ConversationTests.Exchange();
        var log = new CapturedLog();
        using var w = new Workspace(configure: (services, _) => services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(log));
        w.Store(ConversationTests.Write(exchange[..4]));
        w.Store(ConversationTests.Write(exchange[4..]));
        await w.RunAsync(AggregatorStage.Parse);
        var damaged = Directory.GetFiles(Path.Combine(w.LakeDirectory, ".connections"), "*.parquet", SearchOption.AllDirectories)[0];
        byte[] garbage = "not a Parquet file"u8.ToArray();
        File.WriteAllBytes(damaged, garbage);

        await w.RunAsync(AggregatorStage.Aggregate);

        await AssertJoinedNowAndAfterRebuildAsync(w);
        var warning = Assert.Single(log.Messages.Distinct(), m => m.Contains(damaged, StringComparison.Ordinal));
        Assert.Contains("cannot be read as Parquet", warning, StringComparison.Ordinal);
        Assert.Contains("tracked again from the stored capture", warning, StringComparison.Ordinal);
        Assert.Equal(garbage, File.ReadAllBytes(damaged));
    }

    /// <summary>
    /// A fragments file of a format this version does not read (here 99) is not used either; with its stored capture
    /// gone there is nothing to track again from, so the warnings say so and the date is still aggregated from the rest.
    /// </summary>
    [Fact]
    public async Task A_fragments_file_of_an_unknown_format_is_not_read()
    {
        var exchange = ConversationTests.Exchange();
        var log = new CapturedLog();
        using var w = new Workspace(configure: (services, _) => services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(log));
        w.Store(ConversationTests.Write(exchange));
        await w.RunAsync(AggregatorStage.Parse);
        var file = Assert.Single(Directory.GetFiles(Path.Combine(w.LakeDirectory, ".connections"), "*.parquet", SearchOption.AllDirectories));
        using (var db = w.DuckDb())
        {
            Workspace.Rows(db, $"COPY (SELECT * FROM read_parquet({Workspace.Q(file)})) TO {Workspace.Q(file + ".new")} (FORMAT parquet, KV_METADATA {{'survey6.connections.format': '99'}})");
        }

        File.Move(file + ".new", file, overwrite: true);
        byte[] before = File.ReadAllBytes(file);
        foreach (var stored in Directory.GetFiles(Path.Combine(w.DataDirectory, "captures"), "*.pcapng", SearchOption.AllDirectories))
            File.Delete(stored);

        await w.RunAsync(AggregatorStage.Aggregate);

        Assert.Contains(log.Messages, m => m.Contains(file, StringComparison.Ordinal) && m.Contains("fragment format 99, this version reads 3", StringComparison.Ordinal));
        Assert.Contains(log.Messages, m => m.Contains("the date's connections lack it", StringComparison.Ordinal));
        // The date's connections partition is there, and empty: no unit has a row.
        Assert.Empty(Directory.EnumerateFiles(w.Lake.DatePartition(LakeLayout.Connections, Date), "*", SearchOption.AllDirectories));
        Assert.True(w.Lake.HasPartition(LakeLayout.Connections, Date));
        Assert.Equal(before, File.ReadAllBytes(file));
    }

    /// <summary>
    /// After an upgrade that changed the fragment format, the cleanup stage removes the parse stage's files of the older
    /// format (here one naming format 2 and one naming none, under the old settings' names), which nothing reads any
    /// more, and says so. It keeps the current file, one of the current format under other settings (they may be set
    /// back), one that cannot be read (for the operator) and one of a newer format; the connections are still there.
    /// </summary>
    [Fact]
    public async Task Cleanup_removes_fragment_files_of_an_older_format_and_nothing_else()
    {
        var exchange = ConversationTests.Exchange();
        var log = new CapturedLog(LogLevel.Information);
        using var w = new Workspace(configure: (services, _) => services.AddSingleton<Microsoft.Extensions.Logging.ILoggerProvider>(log)
            .AddLogging(b => b.SetMinimumLevel(LogLevel.Information)));
        w.Store(ConversationTests.Write(exchange));
        await w.RunAsync(AggregatorStage.Parse);
        var current = Assert.Single(Directory.GetFiles(Path.Combine(w.LakeDirectory, ".connections"), "*.parquet", SearchOption.AllDirectories));
        var sha = Path.GetFileName(current).Split('.')[0];
        string Beside(string settings) => Path.Combine(Path.GetDirectoryName(current)!, sha + "." + settings + ".parquet");
        void Copy(string target, string? format)
        {
            using var db = w.DuckDb();
            var metadata = format is null ? "" : $", KV_METADATA {{'survey6.connections.format': '{format}'}}";
            Workspace.Rows(db, $"COPY (SELECT * FROM read_parquet({Workspace.Q(current)})) TO {Workspace.Q(target)} (FORMAT parquet{metadata})");
        }

        var formatTwo = Beside("00000000000000a2");
        var noFormat = Beside("00000000000000a1");
        var otherSettings = Beside("00000000000000b3");
        var newer = Beside("00000000000000c9");
        var damaged = Beside("00000000000000d1");
        Copy(formatTwo, "2");
        Copy(noFormat, null);
        Copy(otherSettings, "3");
        Copy(newer, "99");
        File.WriteAllBytes(damaged, "not a Parquet file"u8.ToArray());
        byte[] currentBytes = File.ReadAllBytes(current);

        await w.RunAsync(AggregatorStage.Cleanup);

        Assert.False(File.Exists(formatTwo));
        Assert.False(File.Exists(noFormat));
        Assert.Equal(currentBytes, File.ReadAllBytes(current));
        Assert.True(File.Exists(otherSettings));
        Assert.True(File.Exists(newer));
        Assert.True(File.Exists(damaged));
        var said = Assert.Single(log.Messages, m => m.Contains("connection fragment files of an older format", StringComparison.Ordinal));
        Assert.StartsWith("Cleanup removed 2 ", said, StringComparison.Ordinal);

        await w.RunAsync(AggregatorStage.Aggregate);
        Assert.NotEmpty(Connections(w));
    }

    /// <summary>
    /// A connection that starts more than the idle timeout after its capture's first packet and ends more than the idle
    /// timeout before its last can meet no other capture's: its fragment carries no state for the stitcher, only its
    /// row. The connections at the capture's edges carry theirs.
    /// </summary>
    [Fact]
    public async Task Only_fragments_near_the_ends_of_a_capture_carry_state_for_the_stitcher()
    {
        const long Minute = 60_000_000_000;
        var exchange = ConversationTests.Exchange();
        long start = exchange[0].Time - (10 * Minute);
        var frames = new List<(long Time, byte[] Frame)>
        {
            (start, Ethernet(0x86DD, Ipv6(17, Udp(40000, 53, DnsQuery("example.com", 28)), Client, Router))),
        };
        frames.AddRange(exchange);
        frames.Add((exchange[^1].Time + (10 * Minute), Ethernet(0x86DD, Ipv6(17, Udp(40001, 53, DnsQuery("example.org", 28)), Client, Router))));
        using var w = new Workspace();
        w.Store(ConversationTests.Write(frames));
        await w.RunAsync(AggregatorStage.Parse);

        using (var db = w.DuckDb())
        {
            var glob = Workspace.Q(Path.Combine(w.LakeDirectory, ".connections", "*", "*", "*.parquet"));
            // The state columns (key_protocol among them) are null where no other capture's fragment can meet this one;
            // only a head-open fragment keeps its packets for the stitcher's replay.
            var rows = Workspace.Rows(db, $"SELECT proto, orig_p, head_open, tail_open, key_protocol IS NULL, len(ev_ts_ns) FROM read_parquet({glob}) ORDER BY ts_ns");
            Assert.Equal(3, rows.Count);
            Assert.Equal(["udp", (ushort)40000, true, false, false, 1L], rows[0]);
            Assert.Equal(["tcp", (ushort)50000, false, false, true, null], rows[1]);
            Assert.Equal(["udp", (ushort)40001, false, true, false, null], rows[2]);
        }

        await w.RunAsync(AggregatorStage.Aggregate);
        Assert.Equal(3, Connections(w).Count);
    }

    [Fact]
    public async Task Ts_is_a_utc_timestamp_in_microseconds_and_duration_is_seconds()
    {
        using var w = new Workspace();
        w.Store(ConversationTests.Write(ConversationTests.Exchange()));
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);

        using var db = w.DuckDb();
        var file = Workspace.Q(w.Lake.PartitionGlob(LakeLayout.Connections, Date));
        var schema = Workspace.Rows(db, $"SELECT name, logical_type::VARCHAR FROM parquet_schema({file}) WHERE name IN ('ts', 'duration')");
        Assert.Contains(schema, r => (string)r[0]! == "ts" && ((string)r[1]!).Contains("isAdjustedToUTC=1", StringComparison.Ordinal) && ((string)r[1]!).Contains("MICROS", StringComparison.Ordinal));
        var row = Workspace.Rows(db, $"SELECT epoch_us(ts), ts_ns, duration, duration_ns, typeof(ts) FROM read_parquet({file})").Single();
        Assert.Equal(1_700_000_000_000_000L, (long)row[0]!);
        Assert.Equal(1_700_000_000_000_000_000L, (long)row[1]!);
        Assert.Equal(0.007, (double)row[2]!, 9); // the last ACK, after both FINs, does not count (Zeek's rule)
        Assert.Equal(7_000_000L, (long)row[3]!);
        Assert.Equal("TIMESTAMP WITH TIME ZONE", row[4]);
    }

    [Fact]
    public void A_non_positive_idle_timeout_stops_the_start_and_says_which()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:Connections:UdpIdleTimeout"] = "00:00:00" });
        var e = Assert.ThrowsAny<Exception>(() => w.Options);
        Assert.Contains("Connections:UdpIdleTimeout must be positive (is 00:00:00).", e.Message, StringComparison.Ordinal);
    }
}

using System.Globalization;
using ParquetSharp;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Cli;
using Survey6.Data;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// The lake's times as other tools read them: every dataset's times are Parquet TIMESTAMP, UTC-adjusted, in
/// microseconds, read here with Arrow's C++ Parquet reader (ParquetSharp) rather than the DuckDB that wrote most of
/// them; the typed values agree with the nanosecond columns beside them and, for a known frame, with tshark.
/// </summary>
public sealed class TypedTimesTests : IDisposable
{
    /// <summary>A nanosecond-resolution capture (IPv4), and IPv6 captures that fill the aggregate datasets.</summary>
    private const string NanoCapture = "tcpdump/tcp-handshake-nano.pcap";

    private static readonly string[] OtherCaptures =
    [
        "zeek/ftp/ipv6.pcap", "zeek/icmp/icmp6-router-advert.pcap", "zeek/ipv6-fragmented-dns.pcap",
    ];

    /// <summary>The typed time columns of each dataset, with the nanosecond column each comes from (null: none).</summary>
    private static readonly Dictionary<string, (string Typed, string? Nanoseconds)[]> Expected = new(StringComparer.Ordinal)
    {
        [LakeLayout.Packets] = [("ts", "time_epoch_ns"), ("window_start", "window_start_ns"), ("window_end", "window_end_ns")],
        [LakeLayout.Captures] =
        [
            ("first_time", "first_time_ns"), ("last_time", "last_time_ns"), ("window_start", "window_start_ns"),
            ("window_end", "window_end_ns"), ("received_at", "received_at_ns"),
        ],
        [LakeLayout.Flows] = SeenTimes,
        [LakeLayout.Addresses] = SeenTimes,
        [LakeLayout.Prefixes] = SeenTimes,
        [LakeLayout.Dns] = SeenTimes,
        [LakeLayout.Icmpv6] = SeenTimes,
        [LakeLayout.Icmpv6Routers] = SeenTimes,
        [LakeLayout.Summary] = [("hour", null)],
    };

    private static (string, string?)[] SeenTimes => [("first_seen", "first_seen_ns"), ("last_seen", "last_seen_ns")];

    private readonly Workspace _w = new();
    private readonly string _nanoSha;

    public TypedTimesTests()
    {
        _nanoSha = _w.Store(File.ReadAllBytes(TestData.Capture(NanoCapture)));
        foreach (var capture in OtherCaptures)
            _w.Store(File.ReadAllBytes(TestData.Capture(capture)));
        _w.RunAsync(AggregatorStage.Parse).GetAwaiter().GetResult();
        _w.RunAsync(AggregatorStage.Aggregate).GetAwaiter().GetResult();
    }

    public void Dispose() => _w.Dispose();

    [Fact]
    public void Every_dataset_carries_its_times_as_utc_microsecond_timestamps_equal_to_the_nanoseconds_beside_them()
    {
        foreach (var (dataset, columns) in Expected)
        {
            var files = Directory.EnumerateFiles(_w.Lake.Dataset(dataset), "*.parquet", SearchOption.AllDirectories).ToList();
            Assert.True(files.Count > 0, dataset);
            long rows = 0;
            foreach (var file in files)
            {
                using var reader = new ParquetFileReader(file);
                var schema = reader.FileMetaData.Schema;
                var index = Enumerable.Range(0, schema.NumColumns).ToDictionary(i => schema.Column(i).Path.ToDotString(), StringComparer.Ordinal);
                foreach (var (typed, nanoseconds) in columns)
                {
                    Assert.True(index.ContainsKey(typed), $"{dataset} has no column {typed}");
                    var column = schema.Column(index[typed]);
                    var timestamp = Assert.IsType<TimestampLogicalType>(column.LogicalType);
                    Assert.True(timestamp.IsAdjustedToUtc, $"{dataset}.{typed} is not UTC-adjusted");
                    Assert.Equal(TimeUnit.Micros, timestamp.TimeUnit);
                    Assert.Equal(PhysicalType.Int64, column.PhysicalType);
                    Assert.Equal(ParquetSharp.Schema.ConvertedType.TimestampMicros, column.SchemaNode.ConvertedType);
                }
                // Any other timestamp in the file has the same form.
                for (int i = 0; i < schema.NumColumns; i++)
                {
                    if (schema.Column(i).LogicalType is TimestampLogicalType other)
                        Assert.True(other.IsAdjustedToUtc && other.TimeUnit == TimeUnit.Micros, $"{dataset}.{schema.Column(i).Name}");
                }

                for (int g = 0; g < reader.FileMetaData.NumRowGroups; g++)
                {
                    using var group = reader.RowGroup(g);
                    int n = checked((int)group.MetaData.NumRows);
                    rows += n;
                    foreach (var (typed, nanoseconds) in columns)
                    {
                        var times = ReadTimes(group, index[typed], n);
                        if (nanoseconds is null)
                        {
                            // summary.hour: the start of a UTC hour.
                            Assert.All(times, t => Assert.Equal(0, t!.Value.Ticks % TimeSpan.TicksPerHour));
                            continue;
                        }
                        using var exact = group.Column(index[nanoseconds]).LogicalReader<long?>();
                        var ns = exact.ReadAll(n);
                        for (int r = 0; r < n; r++)
                            Assert.Equal(ns[r] is { } v ? DateTime.UnixEpoch.AddTicks(v / 1000 * TimeSpan.TicksPerMicrosecond) : null, times[r]);
                    }
                }
            }
            Assert.True(rows > 0, $"{dataset} has no rows to compare");
        }
    }

    [Fact]
    public void A_known_frame_reads_as_tsharks_epoch_time_to_the_microsecond_and_the_nanosecond()
    {
        // tshark's frame.time_epoch of frame 1 of the nanosecond capture, as text: seconds, then 9 decimals.
        var oracle = File.ReadLines(Path.Combine(TestData.OracleFolder, NanoCapture + ".tsv")).Skip(1)
            .Select(l => l.Split('\t')).First(f => f[0] == "1")[1];
        var parts = oracle.Split('.');
        long oracleNs = long.Parse(parts[0], CultureInfo.InvariantCulture) * 1_000_000_000 + long.Parse(parts[1], CultureInfo.InvariantCulture);
        Assert.NotEqual(0, oracleNs % 1000);

        var file = _w.Lake.PerCaptureFile(LakeLayout.Packets, new DateOnly(2024, 5, 1), "probe-a", _nanoSha);
        using var reader = new ParquetFileReader(file);
        var schema = reader.FileMetaData.Schema;
        int Column(string name) => Enumerable.Range(0, schema.NumColumns).Single(i => schema.Column(i).Name == name);
        using var group = reader.RowGroup(0);
        int n = checked((int)group.MetaData.NumRows);
        using var frames = group.Column(Column("frame")).LogicalReader<long>();
        int row = Array.IndexOf(frames.ReadAll(n), 1L);
        Assert.True(row >= 0);
        var ts = ReadTimes(group, Column("ts"), n)[row];
        using var exact = group.Column(Column("time_epoch_ns")).LogicalReader<long?>();

        Assert.Equal(DateTime.UnixEpoch.AddTicks(oracleNs / 1000 * TimeSpan.TicksPerMicrosecond), ts);
        Assert.Equal(new DateTime(2014, 12, 9, 17, 16, 9, DateTimeKind.Utc).AddTicks(9_245_050), ts);
        Assert.Equal(oracleNs, exact.ReadAll(n)[row]);

        // survey6 query shows it as a UTC instant.
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(0, QueryCommand.Run($"SELECT ts, time_epoch_ns FROM packets WHERE capture_sha256 = '{_nanoSha}' AND frame = 1", "csv", null, _w.DataDirectory, output, error));
        Assert.Equal($"ts,time_epoch_ns\n2014-12-09 17:16:09.924505+00:00,{oracleNs}\n", output.ToString().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Capture_path_is_relative_to_the_data_directory_and_names_the_stored_capture()
    {
        using var db = _w.DuckDb();
        var captures = Path.Combine(_w.Lake.Dataset(LakeLayout.Captures), "*", "*", "*.parquet");
        var rows = Workspace.Rows(db, $"SELECT capture_sha256, probe_id, date, capture_path FROM read_parquet({Workspace.Q(captures)}, hive_partitioning = true)");
        Assert.Equal(1 + OtherCaptures.Length, rows.Count);
        var data = Path.GetFullPath(_w.DataDirectory) + Path.DirectorySeparatorChar;
        foreach (var row in rows)
        {
            var (sha, probe, date, path) = ((string)row[0]!, (string)row[1]!, (DateOnly)row[2]!, (string)row[3]!);
            Assert.False(Path.IsPathRooted(path), path);
            Assert.Equal($"captures/{probe}/{date:yyyy-MM-dd}/{sha}.pcapng", path);
            var resolved = Path.GetFullPath(Path.Combine(_w.DataDirectory, path));
            Assert.StartsWith(data, resolved, StringComparison.Ordinal);
            Assert.Equal(new DataLayout(_w.DataDirectory).CapturePath(probe, date, sha), resolved);
            Assert.True(File.Exists(resolved), resolved);
        }
    }

    private static DateTime?[] ReadTimes(RowGroupReader group, int column, int rows)
    {
        using var reader = group.Column(column).LogicalReader<DateTime?>();
        return reader.ReadAll(rows);
    }
}

using System.Globalization;
using System.Text.Json.Nodes;
using Survey6.Cli;
using Survey6.Packets.Capture;
using Survey6.Probe.Join;
using static Survey6.Server.Tests.UploadTestSupport;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// What a capture's manifest means in the lake, through the commands an operator types: a probe joined with
/// labels and a place uploads with <c>survey6 probe upload</c>, <c>survey6 aggregate once</c> builds the lake and
/// <c>survey6 query</c> reads it.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ManifestToLakeTests : IAsyncLifetime
{
    private ServerHarness _server = null!;
    private string _state = "";
    private string _probeId = "";
    private long _windowStart;
    private long _windowEnd;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        _state = Path.Combine(_server.Root, "probe");
        var (exit, output, error) = await CliAsync("probe", "join", "--server", _server.GrpcUrl.ToString(), "--token", _server.CreateToken(),
            "--ca-hash", _server.Pki.Authority.Pin, "--state-dir", _state,
            "--label", "site=lab", "--label", "rack=r1", "--location", "52.52,13.405", "--country", "DE", "--city", "Berlin");
        Assert.True(exit == 0, error + output);
        _probeId = new ProbeStateDirectory(_state).ReadProbeId()!;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task The_drops_a_manifest_declares_reach_captures_and_summary()
    {
        var frames = await UploadWithManifestAsync(21, kernel: 3, queue: 5, disk: 7);
        Assert.Equal(0, await AggregateOnceAsync());

        // 3 + 0 + 5 + 7 = 15 frames the probe saw and could not keep; completeness = frames / (frames + dropped).
        var summary = Query($"SELECT sum(frames), sum(dropped), min(completeness), max(completeness) FROM summary WHERE probe_id = '{_probeId}'").Split(',');
        Assert.Equal([frames.ToString(CultureInfo.InvariantCulture), "15"], summary[..2]);
        Assert.All(summary[2..], c => Assert.Equal((double)frames / (frames + 15), double.Parse(c, CultureInfo.InvariantCulture), 12));
        Assert.Equal("3,0,5,7,manifest", Query("SELECT kernel_dropped, interface_dropped, queue_dropped, disk_dropped, drop_source FROM captures"));
    }

    [Fact]
    public async Task The_window_a_manifest_declares_is_the_captures_window_not_its_first_frame()
    {
        await UploadWithManifestAsync(24, kernel: 0, queue: 0, disk: 0);
        Assert.Equal(0, await AggregateOnceAsync());
        Assert.Equal($"{_windowStart},{_windowEnd}", Query("SELECT window_start_ns, window_end_ns FROM captures"));
        // The same window typed, as a UTC instant to the microsecond.
        Assert.Equal($"{Utc(_windowStart)},{Utc(_windowEnd)}", Query("SELECT window_start, window_end FROM captures"));
        // Where the server stored it, relative to its data directory.
        var stored = Query("SELECT capture_path FROM captures");
        Assert.False(Path.IsPathRooted(stored), stored);
        Assert.StartsWith("captures/" + _probeId + "/", stored, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_server.DataDirectory, stored)), stored);
        // The manifest claims other labels and another place: the server's record of the probe wins.
        Assert.Equal("rack=r1;site=lab,DE,Berlin", Query("SELECT labels, location_country, location_city FROM captures"));
    }

    [Fact]
    public async Task Probe_upload_without_a_manifest_gives_every_lake_row_the_labels_and_location_the_server_shows()
    {
        var data = Capture(22, 100 << 10);
        var path = Write(Path.Combine(_server.Root, "files"), data);
        var (exit, output, error) = await CliAsync("probe", "upload", path, "--state-dir", _state);
        Assert.True(exit == 0, error + output);
        Assert.Equal(0, await AggregateOnceAsync());

        (exit, output, _) = await CliAsync("server", "probes", "--json", "--data-dir", _server.DataDirectory);
        Assert.Equal(0, exit);
        var shown = JsonNode.Parse(output)!.AsArray().Single(p => p!["id"]!.GetValue<string>() == _probeId)!;
        Assert.Equal("r1", shown["labels"]!["rack"]!.GetValue<string>());
        Assert.Equal("lab", shown["labels"]!["site"]!.GetValue<string>());

        const string Expected = "rack=r1;site=lab,52.52,13.405,DE,Berlin";
        Assert.Equal(Expected, Query("SELECT labels, location_lat, location_lon, location_country, location_city FROM captures"));
        var frames = Frames(path).Count;
        Assert.Equal($"{frames},{Expected}", Query(
            "SELECT count(*), any_value(labels), any_value(location_lat), any_value(location_lon), any_value(location_country), any_value(location_city) FROM packets " +
            "GROUP BY labels, location_lat, location_lon, location_country, location_city"));
    }

    [Fact]
    public async Task A_manifest_missing_a_required_field_is_refused_with_the_reason_and_nothing_is_stored()
    {
        var data = Capture(23, 64 << 10);
        var path = Write(Path.Combine(_server.Root, "files"), data);
        var (frames, first) = Frames(path);
        var manifest = JsonNode.Parse(ProbeManifest(path, data, frames, first, first + 1, 0, 0, 0, 0))!.AsObject();
        manifest.Remove("frames");
        var manifestPath = Path.Combine(_server.Root, "manifest.json");
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());

        var (exit, output, error) = await CliAsync("probe", "upload", path, "--manifest", manifestPath, "--attempts", "1", "--state-dir", _state);
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Equal(
            $"survey6 probe upload: the server refused {path}: upload refused: invalid-header: the manifest is not a survey6 capture manifest (version 1): missing required field 'frames'\n",
            error.ReplaceLineEndings("\n"));

        // A wrong type is refused the same way, naming the field.
        manifest["frames"] = "many";
        await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());
        (exit, _, error) = await CliAsync("probe", "upload", path, "--manifest", manifestPath, "--attempts", "1", "--state-dir", _state);
        Assert.Equal(1, exit);
        Assert.Contains("invalid-header: the manifest is not a survey6 capture manifest (version 1): field 'frames' is not an integer", error, StringComparison.Ordinal);

        Assert.Empty(StoredCopies(_server.DataDirectory, Sha(data)));
        var incoming = Path.Combine(_server.DataDirectory, "incoming");
        Assert.Empty(Directory.Exists(incoming) ? Directory.GetFiles(incoming, "*", SearchOption.AllDirectories) : []);
        Assert.Empty(UploadRows(_server.DataDirectory));
    }

    /// <summary>The probe's manifest as <c>probe run</c> writes it beside each spool file (docs/protocol.md).</summary>
    internal static string ProbeManifest(string path, byte[] data, long frames, long windowStart, long windowEnd, long kernel, long iface, long queue, long disk) =>
        new JsonObject
        {
            ["manifest_version"] = 1,
            ["file"] = Path.GetFileName(path),
            ["sha256"] = Sha(data),
            ["size"] = data.Length,
            ["sequence"] = 1,
            ["probe_id"] = "whatever-the-file-claims",
            ["hostname"] = "probe-host",
            ["version"] = "0.1.0",
            ["labels"] = new JsonObject { ["site"] = "claimed-by-the-probe" },
            ["location"] = "1,2,FR,Paris",
            ["capture_start"] = PcapngMetadata.FormatTimestamp(windowStart),
            ["window_start"] = PcapngMetadata.FormatTimestamp(windowStart),
            ["window_end"] = PcapngMetadata.FormatTimestamp(windowEnd),
            ["first_frame"] = null,
            ["last_frame"] = null,
            ["frames"] = frames,
            ["interface"] = "eth0",
            ["filter"] = "ip6",
            ["snaplen"] = 65535,
            ["received"] = frames + kernel + iface,
            ["drops"] = new JsonObject { ["kernel"] = kernel, ["interface"] = iface, ["queue"] = queue, ["disk"] = disk },
            ["close_reason"] = "size",
            ["repaired"] = false,
            ["interfaces"] = new JsonArray(new JsonObject
            {
                ["id"] = 0, ["name"] = "eth0", ["link_type"] = 1, ["snaplen"] = 65535, ["filter"] = "ip6", ["frames"] = frames,
                ["received"] = frames + kernel + iface, ["kernel_dropped"] = kernel, ["interface_dropped"] = iface, ["queue_dropped"] = queue, ["disk_dropped"] = disk,
            }),
        }.ToJsonString();

    /// <summary>Uploads a capture with a probe manifest whose window starts 1.23 s before its first frame; returns its frame count.</summary>
    private async Task<long> UploadWithManifestAsync(int seed, long kernel, long queue, long disk)
    {
        var data = Capture(seed, 200 << 10);
        var path = Write(Path.Combine(_server.Root, "files"), data);
        var (frames, firstFrameNs) = Frames(path);
        // The window the probe's counters cover starts before the first frame: the manifest says so, not the frames.
        _windowStart = firstFrameNs - 1_234_567_891L;
        _windowEnd = firstFrameNs + 600_000_000_000L;
        var manifest = Path.Combine(_server.Root, "manifest.json");
        await File.WriteAllTextAsync(manifest, ProbeManifest(path, data, frames, _windowStart, _windowEnd, kernel, 0, queue, disk));
        var (exit, output, error) = await CliAsync("probe", "upload", path, "--manifest", manifest, "--state-dir", _state);
        Assert.True(exit == 0, error + output);
        return frames;
    }

    private static (long Count, long FirstNanoseconds) Frames(string path)
    {
        using var reader = CaptureReader.Open(path);
        long count = 0, first = long.MaxValue;
        while (reader.TryRead(out var frame))
        {
            count++;
            first = Math.Min(first, frame.TimestampNanoseconds);
        }

        return (count, first);
    }

    private async Task<int> AggregateOnceAsync()
    {
        var (exit, output, error) = await CliAsync("aggregate", "once", "--data-dir", _server.DataDirectory);
        Assert.True(exit == 0, error + output);
        return exit;
    }

    private static string Utc(long nanoseconds) =>
        DateTimeOffset.UnixEpoch.AddTicks(nanoseconds / 1000 * TimeSpan.TicksPerMicrosecond).ToString("yyyy-MM-dd HH:mm:ss.FFFFFFFzzz", CultureInfo.InvariantCulture);

    /// <summary>The rows of <c>survey6 query --format csv</c> without the header, one line.</summary>
    private string Query(string sql) => string.Join("\n", QueryRows(_server.DataDirectory, sql));

    /// <summary>The rows of <c>survey6 query --format csv</c> over a data directory's lake, without the header.</summary>
    internal static List<string> QueryRows(string dataDirectory, string sql)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.True(QueryCommand.Run(sql, "csv", null, dataDirectory, output, error) == 0, error.ToString());
        return [.. output.ToString().ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)];
    }

    /// <summary>The <c>survey6</c> command tree in this process: exit code, output, error output.</summary>
    internal static async Task<(int ExitCode, string Output, string Error)> CliAsync(params string[] arguments)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await RootCommandFactory.Create().Parse(arguments).InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }
}

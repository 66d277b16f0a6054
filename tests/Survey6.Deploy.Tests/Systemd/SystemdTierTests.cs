using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Survey6.Deploy.Tests.Support;
using Survey6.Testing;
using Xunit.Abstractions;

namespace Survey6.Deploy.Tests.Systemd;

/// <summary>
/// The packages under a real service manager: <see cref="SystemdCluster"/>'s C&amp;C and probe containers, with the
/// units as shipped. Select the tier with <c>--filter Category=systemd</c>.
/// </summary>
[Collection(PackagesCollection.Name)]
[Trait(TestCategory.Name, TestCategory.Systemd)]
public sealed partial class SystemdTierTests : IClassFixture<SystemdCluster>
{
    // UDP datagrams from the C&C host to closed ports on the probe host, one port per datagram: a port in the lake
    // is one datagram captured, so a port missing is a loss and a port counted twice a duplicate.
    private const int FirstMarkerPort = 30000;

    private readonly PackagesFixture _packages;
    private readonly SystemdCluster _cluster;
    private readonly ITestOutputHelper _log;

    public SystemdTierTests(PackagesFixture packages, SystemdCluster cluster, ITestOutputHelper log)
    {
        _packages = packages;
        _cluster = cluster;
        _log = log;
    }

    [Fact]
    public async Task The_probe_is_healthy_and_both_services_run_as_survey6_with_only_the_capabilities_they_need()
    {
        await _cluster.EnsureAsync(_packages, _log);
        var c = _cluster;
        await c.EnsureRunningAsync(); // waits for "healthy" on the server

        foreach (var (container, unit, capabilities) in new[]
                 {
                     (c.Probe, "survey6-probe", ProcessStatus.CaptureCapabilities),
                     (c.Server, "survey6-server", ProcessStatus.NoCapabilities),
                 })
        {
            var pid = container.Exec("systemctl", "show", "--property=MainPID", "--value", unit).Check().Stdout.Trim();
            Assert.NotEqual("0", pid);
            var status = ProcessStatus.Parse(container.Exec("cat", $"/proc/{pid}/status").Check().Stdout);
            var uid = int.Parse(container.Exec("id", "-u", "survey6").Check().Stdout.Trim(), CultureInfo.InvariantCulture);
            Assert.True(status.RunsAs(uid), $"{unit} runs as {status.Uid}, not survey6 ({uid})");
            Assert.Equal(capabilities, status.CapEff);
            Assert.Equal(capabilities, status.CapPrm);
            Assert.Equal(capabilities, status.CapAmb);
            Assert.Equal(capabilities, status.CapBnd);
        }

        // The join ran as root and the operator commands too: nothing in either directory is left to root.
        Assert.Equal("", c.Probe.Exec("find", SystemdCluster.ProbeState, "!", "-user", "survey6").Check().Stdout);
        Assert.Equal("", c.Server.Exec("find", SystemdCluster.ServerData, "!", "-user", "survey6").Check().Stdout);
        Assert.Equal("survey6 600", c.Probe.Exec("stat", "-c", "%U %a", SystemdCluster.ProbeState + "/key.pem").Check().Stdout.Trim());

        // Web UI keys: kept, owner-only (a page with a form makes the first one).
        c.Probe.Exec("curl", "-fsS", "-o", "/dev/null", $"http://[{c.Link.ServerAddress}]:{SystemdCluster.HttpPort}/login").Check();
        Assert.Equal("survey6 700", c.Server.Exec("stat", "-c", "%U %a", SystemdCluster.ServerData + "/data-protection").Check().Stdout.Trim());
        var keyModes = c.Server.Shell($"stat -c '%U %a' {SystemdCluster.ServerData}/data-protection/*.xml").Check().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(keyModes);
        Assert.All(keyModes, m => Assert.Equal("survey6 600", m));
    }

    [Fact]
    public async Task The_journal_holds_both_services_logs()
    {
        await _cluster.EnsureAsync(_packages, _log);
        await _cluster.EnsureRunningAsync();
        var server = _cluster.Server.Exec("journalctl", "--no-pager", "-u", "survey6-server").Check().Stdout;
        Assert.Contains("Listening for probes on https://", server, StringComparison.Ordinal);
        Assert.Contains($"Probe {_cluster.ProbeId} joined from", server, StringComparison.Ordinal);
        Assert.DoesNotContain("in-memory repository", server, StringComparison.OrdinalIgnoreCase);
        var probe = _cluster.Probe.Exec("journalctl", "--no-pager", "-u", "survey6-probe").Check().Stdout;
        Assert.Contains("Capture run ", probe, StringComparison.Ordinal);
        Assert.Contains("Control socket listening at " + SystemdCluster.ProbeState + "/probe.sock", probe, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restarts_and_reboots_lose_and_duplicate_nothing_and_stop_closes_the_open_file()
    {
        await _cluster.EnsureAsync(_packages, _log);
        var c = _cluster;
        await c.EnsureRunningAsync();
        var sent = new List<int>();
        var next = FirstMarkerPort;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        void Send(int count)
        {
            sent.AddRange(SendMarkers(next, count));
            _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:0.0} s] {DateTimeOffset.UtcNow:HH:mm:ss.fff} sent ports {next}-{next + count - 1}"));
            next += count;
        }

        Send(50);
        c.Probe.Exec("systemctl", "restart", "survey6-probe").Check();
        await c.WaitCapturingAsync("systemctl restart survey6-probe");
        Send(50);
        c.Server.Exec("systemctl", "restart", "survey6-server").Check();
        Send(50); // the probe goes on capturing while its server restarts
        await c.WaitServerAsync("systemctl restart survey6-server");
        await c.Probe.RebootAsync();
        await c.WaitCapturingAsync("a reboot of the probe host");
        Send(50);
        await c.Server.RebootAsync();
        await c.WaitServerAsync("a reboot of the C&C host");
        Send(50);

        // systemctl stop while frames go into the open file: it must close it (ISBs, rename, manifest), leaving no .partial.
        var stopFirst = next;
        var since = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1;
        using (var stream = StreamMarkers(next, 400))
        {
            await SystemdCluster.WaitAsync("frames in the open spool file", TimeSpan.FromMinutes(2),
                () => c.ProbeStatus()?["spool"]?["current_file_frames"]?.GetValue<long>() > 0, () => c.ProbeStatus()?.ToJsonString() ?? "no status");
            c.Probe.Exec("systemctl", "stop", "survey6-probe").Check();
        }

        next += 400;
        var spool = Path.Combine(c.Probe.Root, SystemdCluster.ProbeState.TrimStart('/'), "spool");
        Assert.Empty(Directory.GetFiles(spool, "*.partial"));
        var journal = c.Probe.Exec("journalctl", "--no-pager", "-o", "cat", "-u", "survey6-probe", "--since", "@" + since.ToString(CultureInfo.InvariantCulture)).Check().Stdout;
        var closes = ClosedByStop().Matches(journal);
        Assert.True(closes.Count == 1, "expected the stop to close one file, the journal says:\n" + journal);
        var closedByStop = StoredManifest(closes[0].Groups[1].Value);
        Assert.Equal("stop", closedByStop["close_reason"]?.GetValue<string>());
        Assert.Equal(closes[0].Groups[2].Value, closedByStop["frames"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture));
        c.Probe.Exec("systemctl", "start", "survey6-probe").Check();
        await c.WaitCapturingAsync("systemctl start survey6-probe");
        Send(50);

        // Every datagram sent while the probe ran is in the lake once, and so is the file the stop closed.
        await WaitForMarkersAsync(sent);
        _log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalSeconds,6:0.0} s] every marker in the lake"));
        await SettleAsync();
        var counts = MarkerCounts(FirstMarkerPort, next);
        var missing = sent.Where(p => !counts.ContainsKey(p)).ToList();
        var twice = counts.Where(p => p.Value > 1).Select(p => $"{p.Key}x{p.Value}").ToList();
        Assert.True(missing.Count == 0 && twice.Count == 0, $"missing: {string.Join(' ', missing)}; duplicated: {string.Join(' ', twice)}");
        var sha = closedByStop["sha256"]!.GetValue<string>();
        var frames = closedByStop["frames"]!.GetValue<long>();
        var stored = c.Query($"SELECT frames FROM captures WHERE capture_sha256 = '{sha}'");
        Assert.True(stored is [[var f]] && f == frames.ToString(CultureInfo.InvariantCulture), $"the file closed by the stop ({sha}, {frames} frames) is in the lake as: {Rows(stored)}");
        var streamed = counts.Where(p => p.Key >= stopFirst && p.Key < stopFirst + 400).ToList();
        Assert.NotEmpty(streamed);
        _log.WriteLine($"markers: {sent.Count} sent while capturing, all in the lake once; {streamed.Count} of 400 sent around the stop captured, none twice");
    }

    [Fact]
    public async Task The_lake_holds_the_traffic_and_none_of_the_probes_own_CnC_traffic()
    {
        await _cluster.EnsureAsync(_packages, _log);
        var c = _cluster;
        await c.EnsureRunningAsync();
        var first = FirstMarkerPort + 5000;
        var sent = SendMarkers(first, 50);
        await WaitForMarkersAsync(sent);
        Assert.True(MarkerCounts(first, first + 50).Count == 50);

        // The daemon talks to its C&C on the gRPC port only. The web port carries what people and this test's health
        // checks send from the probe host (curl), which is traffic on the link like any other and stays in the capture.
        var own = c.Query(
            $"SELECT count(*) FROM packets WHERE probe_id = '{c.ProbeId}' AND flow_protocol = 6 AND {SystemdCluster.GrpcPort} IN (flow_src_port, flow_dst_port)");
        var web = c.Query(
            $"SELECT count(*) FROM packets WHERE probe_id = '{c.ProbeId}' AND flow_protocol = 6 AND {SystemdCluster.HttpPort} IN (flow_src_port, flow_dst_port)");
        _log.WriteLine($"frames with the C&C's gRPC port {SystemdCluster.GrpcPort}: {Rows(own)}; with its web port {SystemdCluster.HttpPort} (curl from the probe host): {Rows(web)}");
        Assert.True(own is [["0"]], $"the lake holds the probe's own traffic with its C&C (frames to or from port {SystemdCluster.GrpcPort}): {Rows(own)}");
    }

    [Fact]
    public async Task Systemd_analyze_security_scores_both_units()
    {
        await _cluster.EnsureAsync(_packages, _log);
        foreach (var (container, unit, bound) in new[] { (_cluster.Probe, "survey6-probe.service", 3.0), (_cluster.Server, "survey6-server.service", 2.0) })
        {
            var report = container.Exec("systemd-analyze", "security", "--no-pager", unit).Check().Stdout;
            var match = Exposure().Match(report);
            Assert.True(match.Success, report);
            var score = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            _log.WriteLine($"{unit}: exposure {score} {match.Groups[2].Value}");
            _log.WriteLine(report);
            Assert.True(score <= bound, $"{unit}: exposure {score} is above {bound}:\n{report}");
        }
    }

    /// <summary>
    /// The manifest of a closed spool file: in the probe's spool, or on the C&amp;C if the uploader sent the file while
    /// the service stopped (the store keeps the manifest beside the capture).
    /// </summary>
    private JsonNode StoredManifest(string file)
    {
        var spool = Path.Combine(_cluster.Probe.Root, SystemdCluster.ProbeState.TrimStart('/'), "spool");
        var local = Path.Combine(spool, Path.GetFileNameWithoutExtension(file) + ".manifest.json");
        if (File.Exists(local))
        {
            Assert.True(File.Exists(Path.Combine(spool, file)), $"{file} has a manifest but no capture in the spool");
            return JsonNode.Parse(File.ReadAllText(local))!;
        }

        var store = Path.Combine(_cluster.Server.Root, SystemdCluster.ServerData.TrimStart('/'), "captures");
        var stored = Directory.EnumerateFiles(store, "*.manifest.json", SearchOption.AllDirectories).Select(f => JsonNode.Parse(File.ReadAllText(f))!)
            .FirstOrDefault(m => m["file"]?.GetValue<string>() == file);
        Assert.True(stored is not null, $"{file}: no manifest in the spool ({string.Join(", ", Directory.GetFiles(spool).Select(Path.GetFileName))}) nor on the C&C");
        return stored!;
    }

    private static string Rows(IReadOnlyList<string[]>? rows) => rows is null ? "no answer" : string.Join("; ", rows.Select(r => string.Join(',', r)));

    /// <summary>One datagram to each port in [first, first + count), from the C&amp;C host to the probe host (bash's /dev/udp).</summary>
    private List<int> SendMarkers(int first, int count)
    {
        var last = first + count - 1;
        _cluster.Server.Exec("bash", "-c", $"for p in $(seq {first} {last}); do printf 'survey6 marker %d' $p > /dev/udp/{_cluster.Link.ProbeAddress}/$p; done").Check();
        return Enumerable.Range(first, count).ToList();
    }

    /// <summary>Like <see cref="SendMarkers"/>, one datagram every 20 ms, in the background.</summary>
    private BackgroundProcess StreamMarkers(int first, int count) =>
        _cluster.Server.Start("bash", "-c", $"for p in $(seq {first} {first + count - 1}); do printf 'survey6 marker %d' $p > /dev/udp/{_cluster.Link.ProbeAddress}/$p; sleep 0.02; done");

    /// <summary>Marker port -> frames in the lake (datagrams from the C&amp;C host to the probe host on ports [first, end)).</summary>
    private Dictionary<int, int> MarkerCounts(int first, int end)
    {
        var rows = _cluster.Query(
            $"SELECT flow_dst_port, count(*) FROM packets WHERE probe_id = '{_cluster.ProbeId}' AND flow_protocol = 17 " +
            $"AND flow_src = '{_cluster.Link.ServerAddress}' AND flow_dst = '{_cluster.Link.ProbeAddress}' " +
            $"AND flow_dst_port >= {first} AND flow_dst_port < {end} GROUP BY ALL") ?? [];
        return rows.ToDictionary(r => int.Parse(r[0], CultureInfo.InvariantCulture), r => int.Parse(r[1], CultureInfo.InvariantCulture));
    }

    private Task WaitForMarkersAsync(IReadOnlyCollection<int> ports)
    {
        var (first, end) = (ports.Min(), ports.Max() + 1);
        return SystemdCluster.WaitAsync($"{ports.Count} marker datagrams in the lake", TimeSpan.FromMinutes(5),
            () => ports.All(MarkerCounts(first, end).ContainsKey),
            () => MissingMarkers(ports, MarkerCounts(first, end)));
    }

    /// <summary>
    /// What a reader of a failed wait needs: which ports are missing, the probe's spool, the ledger, the server's
    /// warnings, the captures in the lake with their markers, and the probe's capture runs and files.
    /// </summary>
    private string MissingMarkers(IReadOnlyCollection<int> ports, Dictionary<int, int> counts)
    {
        var missing = ports.Where(p => !counts.ContainsKey(p)).Order().ToList();
        var ranges = string.Join(' ', missing.Select((p, i) => (p, run: p - i)).GroupBy(x => x.run)
            .Select(g => g.Count() == 1 ? $"{g.First().p}" : $"{g.First().p}-{g.Last().p}"));
        var ledger = _cluster.Survey6OnServer("aggregate", "status", "--data-dir", SystemdCluster.ServerData).Output;
        var warnings = _cluster.Server.Shell("journalctl --no-pager -o short-precise -p warning -u survey6-server | tail -n 40").Output;
        var captures = _cluster.Query(
            $"SELECT capture_sha256, count(*), min(ts), max(ts), count(*) FILTER (WHERE flow_protocol = 17 AND flow_dst_port BETWEEN {FirstMarkerPort} AND {FirstMarkerPort + 999}), " +
            $"min(flow_dst_port) FILTER (WHERE flow_protocol = 17 AND flow_dst_port BETWEEN {FirstMarkerPort} AND {FirstMarkerPort + 999}) FROM packets GROUP BY ALL ORDER BY 3");
        var probeLog = _cluster.Probe.Shell("journalctl --no-pager -o short-precise -u survey6-probe | grep -E 'Capture run|Spool file|Stopping|Started' | tail -n 40").Output;
        return $"{ports.Count - missing.Count} of {ports.Count}; missing ports {ranges}\nprobe spool: {_cluster.ProbeStatus()?["spool"]?.ToJsonString()}\n" +
            $"aggregate status:\n{ledger}\nserver warnings:\n{warnings}\ncaptures (sha, frames, first, last, markers, first marker):\n{Rows(captures).Replace("; ", "\n", StringComparison.Ordinal)}\n" +
            $"probe journal:\n{probeLog}";
    }

    /// <summary>
    /// Waits until nothing is on its way: the probe's spool holds no closed file and every capture the server
    /// acknowledged is in the lake. Only then can a count say that nothing arrived twice.
    /// </summary>
    private Task SettleAsync() => SystemdCluster.WaitAsync("the spool uploaded and every upload parsed", TimeSpan.FromMinutes(5), () =>
    {
        if (_cluster.ProbeStatus()?["spool"]?["files"]?.GetValue<int>() != 0)
            return false;
        var uploads = JsonNode.Parse(_cluster.Survey6OnServer("server", "uploads", "--json", "--limit", "100000").Check().Stdout)!.AsArray()
            .Where(u => !u!["duplicate"]!.GetValue<bool>()).Select(u => u!["sha256"]!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        var parsed = (_cluster.Query("SELECT capture_sha256 FROM captures") ?? []).Select(r => r[0]).ToHashSet(StringComparer.Ordinal);
        return uploads.IsSubsetOf(parsed);
    }, () => _cluster.ProbeStatus()?["spool"]?.ToJsonString() ?? "no status");

    [GeneratedRegex(@"Spool file (\S+) closed \(stop\): ([0-9]+) frames")]
    private static partial Regex ClosedByStop();

    [GeneratedRegex(@"Overall exposure level for \S+: ([0-9.]+) (\S+)")]
    private static partial Regex Exposure();
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Survey6.Testbed;
using Xunit.Abstractions;

namespace Survey6.EndToEnd.Tests;

/// <summary>
/// The whole system as an operator runs it: <c>survey6 server run</c> with its embedded aggregator over its data
/// directory, and three <c>survey6 probe run</c> daemons, each inside a network namespace of its own, joined with a
/// join token and capturing there. Traffic of known composition goes out from every host; the lake must hold
/// exactly it, under the right probe. Then faults, one at a time, each followed by the same no-loss check and a
/// look at the states the server reports. The probes run the product's capture filter: they leave their own uploads
/// out by themselves, and what the kernel sends on its own (neighbour discovery, MLD) is captured, so every count here
/// picks the test's packets out of what was captured.
/// </summary>
[Collection(Collection)]
public sealed partial class WholeSystemTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>The lab's tests run one at a time: each starts a server and probes on a busy machine.</summary>
    public const string Collection = "survey6 lab";

    private static readonly TimeSpan Long = TimeSpan.FromSeconds(90);
    private readonly StringBuilder _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly ConcurrentDictionary<string, string> _seenInSpool = new(StringComparer.Ordinal); // "probe/file" -> sha256
    private readonly Dictionary<string, ProbeBook> _books = new(StringComparer.Ordinal);
    private string _root = "";
    private Tmpfs? _spoolDisk;
    private DemoCluster _cluster = null!;
    private Lake _lake = null!;
    private HttpClient _api = null!;
    private readonly CancellationTokenSource _stopSampler = new();
    private Task _sampler = Task.CompletedTask;
    private int _phase;

    public async Task InitializeAsync()
    {
        Tool.RequireRoot();
        _root = Directory.CreateTempSubdirectory("s6e2e-").FullName;
        // Probe 2's spool lives on a small tmpfs of its own, so that the test can fill that disk.
        var spoolDisk = _spoolDisk = new Tmpfs("8m");
        _cluster = await DemoCluster.StartAsync(new DemoClusterOptions
        {
            Directory = _root,
            Probes = 3,
            HeartbeatInterval = TimeSpan.FromSeconds(1),
            RotateAge = TimeSpan.FromSeconds(3),
            ParseSchedule = "0/2 * * * * ?",
            AggregateSchedule = "1/5 * * * * ?",
            CleanupSchedule = "3/10 * * * * ?",
            ServerSettings = new Dictionary<string, string>
            {
                ["Server:Health:EvaluationInterval"] = "00:00:01",
                // Probe 2's spool disk is a tmpfs of 8 MiB: only a nearly full one is "low".
                ["Server:Health:MinFreeDiskBytes"] = "1048576",
            },
            ProbeSettings = probe =>
            [
                // Slow enough that uploads are in flight when the server is killed, quick enough for the test.
                ("Probe:Upload:MaxBytesPerSecond", 16_000),
                ("Probe:Spool:RotateSizeBytes", 1 << 20),
                ("Probe:Spool:MaxSpoolBytes", 6 << 20),
                .. probe.Host.Index == 2 ? new (string, JsonNode)[] { ("Probe:Spool:Directory", spoolDisk.Path) } : [],
            ],
            Echo = Append,
        });
        foreach (var probe in _cluster.Probes)
            _books[probe.ProbeId] = new ProbeBook();
        _lake = new Lake(_cluster.ServerDirectory);
        var token = (await _cluster.ServerCliAsync("server", "api-token", "create", "--name", "e2e")).Split('\n')
            .Select(l => l.Trim()).First(l => l.StartsWith("token: ", StringComparison.Ordinal))["token: ".Length..];
        _api = new HttpClient { BaseAddress = _cluster.HttpUrl, Timeout = TimeSpan.FromSeconds(30) };
        _api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        _sampler = SampleSpoolsAsync(_stopSampler.Token);
        Phase("started: server, aggregator, 3 probes");
    }

    public async Task DisposeAsync()
    {
        await _stopSampler.CancelAsync();
        await _sampler;
        _stopSampler.Dispose();
        _api?.Dispose();
        if (_cluster is not null)
            await _cluster.DisposeAsync();
        _spoolDisk?.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }

        output.WriteLine(Log);
    }

    [Fact]
    public async Task Three_probes_lose_nothing_through_server_kill_link_cut_full_disk_skew_malformed_upload_and_revocation()
    {
        var (p1, p2, p3) = (_cluster.Probes[0], _cluster.Probes[1], _cluster.Probes[2]);

        // 1. Known traffic from every host: all of it in the packets dataset under the right probe, aggregates agree,
        //    the API reports three healthy probes.
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "healthy", [p3.ProbeId] = "healthy" });
        var first = await Task.WhenAll(_cluster.Probes.Select(p => SendBatchAsync(p, tcp: 3)));
        await QuiesceAsync();
        foreach (var batch in first)
            await ExpectInLakeAsync(batch);
        await ExpectAggregatesAsync(first);
        await CheckNothingLostAsync();
        Phase("known traffic in the lake, aggregates match, three healthy probes");

        // 2. The server killed with SIGKILL while probes upload, then restarted on the same ports.
        var pings = _cluster.Probes.Select(p => Task.Run(() => (Probe: p, Replies: _cluster.Network.Ping(p.Host, 160, 200 + p.Host.Index, 0.05)))).ToArray();
        var incoming = Path.Combine(_cluster.ServerDirectory, "incoming");
        var caught = await CatchAsync(() => Directory.Exists(incoming) && Directory.EnumerateFiles(incoming, "*.part", SearchOption.AllDirectories).Any(), TimeSpan.FromSeconds(20));
        _cluster.Server!.KillNow();
        Phase($"server killed ({(caught ? "an upload was in flight" : "no upload seen in flight")})");
        await Task.Delay(TimeSpan.FromSeconds(2)); // probes keep capturing and spooling meanwhile
        await _cluster.StartServerAsync();
        var sent = await Task.WhenAll(pings);
        Assert.All(sent, s => Assert.Equal(160, s.Replies));
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "healthy", [p3.ProbeId] = "healthy" });
        await QuiesceAsync();
        foreach (var (probe, replies) in sent)
        {
            List<JsonObject> rows = [];
            await Poll.UntilAsync(async () =>
            {
                rows = _lake.Query($"SELECT probe_id, count(*) FILTER (WHERE icmpv6_type = 128) AS requests, count(*) FILTER (WHERE icmpv6_type = 129) AS replies FROM packets WHERE flow_payload_len = {8 + 200 + probe.Host.Index} AND (src = '{Address(probe)}' OR dst = '{Address(probe)}') GROUP BY ALL");
                Assert.False(rows.Count > 1 || rows.Any(r => (long)r["requests"]! > 160 || (long)r["replies"]! > replies), $"echoes of probe {probe.Host.Index} more than once, or under another probe: {string.Join("; ", rows)}");
                if (rows is [var row] && (string?)row["probe_id"] == probe.ProbeId && (long)row["requests"]! == 160 && (long)row["replies"]! == replies)
                    return true;
                await probe.RotateAsync(); // frames may still have been in the kernel's capture buffer when the spool looked empty
                return false;
            }, Long, $"echoes of probe {probe.Host.Index} across the server's restart", () => string.Join("; ", rows));
        }

        await CheckNothingLostAsync();
        Phase("server SIGKILL + restart: every echo in the lake once, all probes healthy");

        // 3. Probe 1's link cut at the bridge: the server sees it offline, its files wait in the spool, then go up.
        var beforeCut = await SendBatchAsync(p1);
        _cluster.Network.SetLink(p1.Host, up: false);
        await p1.RotateAsync();
        await ExpectStatesAsync(new() { [p1.ProbeId] = "offline", [p2.ProbeId] = "healthy", [p3.ProbeId] = "healthy" });
        Append($"probe 1 cut off: {StatusText(p1)}");
        var duringCut = await SendBatchAsync(p2);
        _cluster.Network.SetLink(p1.Host, up: true);
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "healthy", [p3.ProbeId] = "healthy" });
        await QuiesceAsync();
        await ExpectInLakeAsync(beforeCut);
        await ExpectInLakeAsync(duringCut);
        await CheckNothingLostAsync();
        Phase("link cut + restored: offline while cut, spooled frames uploaded after, nothing lost");

        // 4. Probe 2's spool disk (a tmpfs) filled by something else while its files cannot be uploaded (the server is
        //    stopped): the disk guard evicts the oldest file, then drops frames, and counts both; the server, back,
        //    sees the disk low and says so; freed, the probe is healthy again.
        await _cluster.Server!.StopAsync(TimeSpan.FromSeconds(30));
        var beforeBatch = (await p2.TryStatusAsync())!;
        var evictable = await SendBatchAsync(p2);
        var evictableFrames = evictable.Udp + evictable.EchoRequests + evictable.EchoReplies + evictable.DnsQueries + evictable.DnsAnswers;
        // The kernel hands frames to libpcap a read timeout after they arrive, as the product ships: before closing the
        // file, wait until the kernel's count has the batch and every frame it counted is delivered, or a late part of
        // the batch lands in the next file, which the guard does not evict.
        await Poll.UntilAsync(async () => await p2.TryStatusAsync() is { } s && s.Capture.QueueDepth == 0
            && s.Capture.PcapReceived - beforeBatch.Capture.PcapReceived >= evictableFrames && s.Capture.Captured >= s.Capture.PcapReceived,
            Long, "probe 2's batch handed over by the kernel", () => StatusText(p2));
        await Poll.UntilAsync(async () =>
        {
            if (await p2.TryStatusAsync() is { Spool.CurrentFileFrames: > 0 })
                await p2.RotateAsync();
            return await p2.TryStatusAsync() is { Spool.Files: >= 1, Spool.CurrentFileFrames: 0 };
        }, Long, "probe 2's batch in a closed file", () => StatusText(p2));
        var before = (await p2.TryStatusAsync())!;
        var filler = Path.Combine(_spoolDisk!.Path, "filler");
        FillDisk(filler, keepFree: 256 << 10);
        // The guard measures free space every GuardInterval and at every close; frames that arrive before it noticed
        // still go to disk (there is room for them). So: send until it trips, then some more, and count every frame
        // as written or dropped, never lost.
        var sentWhileFull = 0;
        await Poll.UntilAsync(async () =>
        {
            sentWhileFull += await DemoSender.UdpAsync(p2.Host, _cluster.Network.ServerAddress, DemoResponders.UdpPort, 5, 333);
            return await p2.TryStatusAsync() is { } s && s.Capture.DiskDropped > before.Capture.DiskDropped;
        }, Long, "probe 2's disk guard tripping", () => StatusText(p2));
        sentWhileFull += await DemoSender.UdpAsync(p2.Host, _cluster.Network.ServerAddress, DemoResponders.UdpPort, 10, 333);
        await Poll.UntilAsync(async () => await p2.TryStatusAsync() is { } s && s.Capture.Captured - before.Capture.Captured >= sentWhileFull && s.Capture.QueueDepth == 0,
            Long, "probe 2 taking the frames sent while its disk is full", () => StatusText(p2));
        var full = (await p2.TryStatusAsync())!;
        Append($"probe 2 with a full disk: {StatusText(p2)}");
        Assert.Equal("degraded", full.State);
        Assert.True(full.Spool.EvictedFiles >= 1 && full.Spool.EvictedFrames - before.Spool.EvictedFrames >= evictableFrames, $"eviction not counted: {StatusText(p2)}");
        var diskDropped = full.Capture.DiskDropped - before.Capture.DiskDropped;
        var writtenWhileFull = full.Capture.Written - before.Capture.Written;
        Assert.True(diskDropped >= 1, "no frame dropped with a full disk: " + StatusText(p2));
        // Every datagram sent while full was written or dropped; beyond them the count holds only what the kernel sent on
        // its own meanwhile (neighbour discovery), which the lake shows below where it was written.
        Assert.True(diskDropped + writtenWhileFull >= sentWhileFull, $"sent {sentWhileFull} while full, but only {diskDropped} dropped and {writtenWhileFull} written");
        Assert.Equal(full.Capture.Captured, full.Capture.Written + full.Capture.QueueDropped + full.Capture.DiskDropped);
        await _cluster.StartServerAsync();
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "degraded", [p3.ProbeId] = "healthy" });
        var low = await ApiProbeAsync(p2.ProbeId);
        Append("probe 2 as the API shows it with a full disk: " + low["state_reasons"]?.ToJsonString());
        Assert.Contains("disk", low["state_reasons"]!.ToJsonString(), StringComparison.OrdinalIgnoreCase);
        // The heartbeat carries the evictions and the disk drops, so the operator sees them, not only the probe. The
        // kernel's own packets go on arriving while the disk is full (more drops, more evictions), so the heartbeat must
        // report at least what the probe counted above and at most what it counts now.
        JsonNode? heartbeat = null;
        await Poll.UntilAsync(async () =>
        {
            heartbeat = JsonNode.Parse(await _cluster.ServerCliAsync("server", "probes", "--json"))!.AsArray().Single(n => (string?)n!["id"] == p2.ProbeId)!["heartbeat"];
            var now = await p2.TryStatusAsync();
            if (heartbeat?["spool"]?["evictedFrames"] is not { } evicted || heartbeat["capture"]?["diskDropped"] is not { } dropped || now is null)
                return false;
            var (reportedEvicted, reportedDropped) = (long.Parse((string)evicted!, CultureInfo.InvariantCulture), long.Parse((string)dropped!, CultureInfo.InvariantCulture));
            return reportedEvicted >= full.Spool.EvictedFrames && reportedEvicted <= now.Spool.EvictedFrames
                && reportedDropped >= full.Capture.DiskDropped && reportedDropped <= now.Capture.DiskDropped;
        }, Long, "probe 2's heartbeat reporting its evictions and disk drops", () => heartbeat?.ToJsonString() ?? "no heartbeat");
        File.Delete(filler);
        await Poll.UntilAsync(async () => await p2.TryStatusAsync() is { State: "capturing" }, Long, "probe 2 capturing again after the disk was freed", () => StatusText(p2));
        var freed = (await p2.TryStatusAsync())!;
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "healthy", [p3.ProbeId] = "healthy" });
        var afterDisk = await SendBatchAsync(p2);
        await QuiesceAsync();
        await ExpectInLakeAsync(evictable with { Udp = 0, EchoRequests = 0, EchoReplies = 0, DnsQueries = 0, DnsAnswers = 0 }); // evicted, and counted as such
        // Written while full: in the lake, but for any the guard evicted after the batch's file, until the disk was freed
        // (files closed by age meanwhile; they and the batch's file may hold a few of the kernel's packets too, so this is
        // a bound). Besides the datagrams, only the kernel's own packets of that time.
        var evictedLater = freed.Spool.EvictedFrames - before.Spool.EvictedFrames - evictableFrames;
        var whileFull = $"probe_id = '{p2.ProbeId}' AND time_epoch_ns BETWEEN {Nanoseconds(before.Now)} AND {Nanoseconds(full.Now)}";
        var datagrams = _lake.Scalar($"SELECT count(*) FROM packets WHERE flow_protocol = 17 AND flow_payload_len = {8 + 333} AND src = '{Address(p2)}'");
        var kernelWhileFull = _lake.Scalar($"SELECT count(*) FROM packets WHERE {whileFull} AND {KernelOwn}");
        Assert.Equal(0, _lake.Scalar($"SELECT count(*) FROM packets WHERE {whileFull} AND NOT {KernelOwn} AND NOT coalesce(flow_protocol = 17 AND flow_payload_len = {8 + 333}, false)"));
        Assert.InRange(datagrams + kernelWhileFull, writtenWhileFull - evictedLater, writtenWhileFull);
        Assert.True(diskDropped + writtenWhileFull - sentWhileFull >= kernelWhileFull, $"{kernelWhileFull} of the kernel's packets in the lake, {diskDropped + writtenWhileFull - sentWhileFull} counted");
        await ExpectInLakeAsync(afterDisk);
        await CheckNothingLostAsync();
        Phase("disk full: eviction and drops counted by the probe, low disk reported by the server, healthy after");

        // 5. Probe 3's clock five minutes fast (Probe:ClockOffset, a test-only setting): the server reports the skew
        //    and degrades it; uploads go on. Back to the true clock, back to healthy.
        await RestartProbeAsync(p3, new Dictionary<string, string> { ["Probe__ClockOffset"] = "00:05:00" });
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "healthy", [p3.ProbeId] = "degraded" });
        var skewed = await ApiProbeAsync(p3.ProbeId);
        Assert.Contains("clock", skewed["state_reasons"]!.ToJsonString(), StringComparison.Ordinal);
        var listing = await _cluster.ServerCliAsync("server", "probes", "--json");
        var skewMs = JsonNode.Parse(listing)!.AsArray().Select(n => n!.AsObject()).Single(n => (string?)n["id"] == p3.ProbeId).ToJsonString();
        Append("skewed probe as `server probes --json` shows it: " + skewMs);
        var whileSkewed = await SendBatchAsync(p3);
        await QuiesceAsync();
        await ExpectInLakeAsync(whileSkewed);
        await RestartProbeAsync(p3, null);
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "healthy", [p3.ProbeId] = "healthy" });
        await CheckNothingLostAsync();
        Phase("clock skew: degraded with the reason while skewed, data still flows, healthy after");

        // 6. Malformed captures uploaded with probe 1's identity (survey6 probe upload). A torn file is refused by the
        //    server (not-a-capture: it validates with the same reader the aggregator uses, so nothing unreadable is
        //    ever acknowledged) and nothing is kept; a well-framed file of garbage packets is stored, parsed, its rows
        //    flagged malformed. Either way the pipeline goes on.
        var sample = Directory.EnumerateFiles(Path.Combine(_cluster.ServerDirectory, "captures", p1.ProbeId), "*.pcapng", SearchOption.AllDirectories)
            .OrderByDescending(f => new FileInfo(f).Length).First();
        var bytes = File.ReadAllBytes(sample);
        var torn = Path.Combine(_root, "torn.pcapng");
        var tornBytes = bytes[..(bytes.Length - 30)]; // the last block cut short
        File.WriteAllBytes(torn, tornBytes);
        var tornSha = Convert.ToHexStringLower(SHA256.HashData(tornBytes));
        using (var refused = ChildProcess.Start("probe upload (torn)", ["probe", "upload", torn, "--state-dir", p1.StateDirectory], networkNamespace: p1.Host.Namespace))
        {
            Assert.True(await refused.WaitForExitAsync(Long), "probe upload of a torn capture did not finish");
            Append("torn capture upload: " + refused.Output.Trim());
            Assert.True(refused.ExitCode != 0, "the server acknowledged a torn capture:\n" + refused.Output);
            Assert.Contains("not-a-capture", refused.Output, StringComparison.Ordinal);
        }

        // Nothing of it is kept. (A count of stored files would race with the probes' own uploads, which go on meanwhile.)
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(_cluster.ServerDirectory, "captures"), "*", SearchOption.AllDirectories),
            f => Path.GetFileName(f).Contains(tornSha, StringComparison.Ordinal));
        var garbage = Path.Combine(_root, "garbage.pcapng");
        File.WriteAllBytes(garbage, GarbageCapture(frames: 7));
        var garbageSha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(garbage)));
        var uploaded = await ChildProcess.RunAsync("probe upload (garbage)", ["probe", "upload", garbage, "--state-dir", p1.StateDirectory], Long, networkNamespace: p1.Host.Namespace);
        Assert.Contains("sha256: " + garbageSha, uploaded, StringComparison.Ordinal);
        _books[p1.ProbeId].UploadedByHand += 7;
        var afterBroken = await Task.WhenAll(_cluster.Probes.Select(p => SendBatchAsync(p)));
        await QuiesceAsync();
        Assert.Equal(7, _lake.Scalar($"SELECT count(*) FROM packets WHERE capture_sha256 = '{garbageSha}' AND malformed AND probe_id = '{p1.ProbeId}'"));
        foreach (var batch in afterBroken)
            await ExpectInLakeAsync(batch);
        await CheckNothingLostAsync();
        Phase("malformed uploads: a torn file refused and not kept, garbage packets stored and flagged malformed; the pipeline goes on");

        // 7. Probe 2 revoked mid-run: its uploads and its stream refused, its files kept; the others unaffected.
        await _cluster.ServerCliAsync("server", "probe", "revoke", p2.ProbeId, "--reason", "e2e: stolen host");
        _books[p2.ProbeId].Revoked = true;
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "revoked", [p3.ProbeId] = "healthy" });
        var refusedBatch = await SendBatchAsync(p2);
        await p2.RotateAsync();
        using (var refused = ChildProcess.Start("probe upload (revoked)", ["probe", "upload", garbage, "--state-dir", p2.StateDirectory, "--attempts", "1"], networkNamespace: p2.Host.Namespace))
        {
            Assert.True(await refused.WaitForExitAsync(Long), "probe upload with a revoked certificate did not finish");
            Assert.True(refused.ExitCode != 0, "a revoked probe's upload was accepted:\n" + refused.Output);
            Append("revoked probe's upload: " + refused.Output.Trim());
        }

        var others = await Task.WhenAll(new[] { p1, p3 }.Select(p => SendBatchAsync(p)));
        await QuiesceAsync();
        foreach (var batch in others)
            await ExpectInLakeAsync(batch);
        await ExpectInLakeAsync(refusedBatch with { Udp = 0, EchoRequests = 0, EchoReplies = 0, DnsQueries = 0, DnsAnswers = 0 });
        await Poll.UntilAsync(async () => await p2.TryStatusAsync() is { Spool.Files: >= 1, Spool.CurrentFileFrames: 0 }, Long, "the revoked probe keeping its files");
        await CheckNothingLostAsync();
        await ExpectStatesAsync(new() { [p1.ProbeId] = "healthy", [p2.ProbeId] = "revoked", [p3.ProbeId] = "healthy" });
        Phase("revocation: refused, files kept on the probe, others unaffected");
    }

    /// <summary>From one host: UDP datagrams, echoes (with replies unless the link is cut), DNS lookups, TCP connections.</summary>
    private async Task<Batch> SendBatchAsync(DemoProbe probe, int tcp = 0)
    {
        var phase = Interlocked.Increment(ref _phase);
        var server = _cluster.Network.ServerAddress;
        var (udpSize, pingSize) = (100 + (10 * phase) + probe.Host.Index, 400 + (10 * phase) + probe.Host.Index);
        var zone = $"b{phase}.h{probe.Host.Index}.e2e.example";
        var udp = await DemoSender.UdpAsync(probe.Host, server, DemoResponders.UdpPort, 25, udpSize);
        var replies = await Task.Run(() => _cluster.Network.Ping(probe.Host, 10, pingSize));
        Assert.Equal(10, replies);
        var answers = await DemoSender.DnsAsync(probe.Host, server, zone, 5);
        Assert.Equal(5, answers);
        await DemoSender.TcpAsync(probe.Host, server, tcp, 1500);
        return new Batch(probe.ProbeId, Address(probe), udpSize, udp, pingSize, 10, replies, zone, 5, answers);
    }

    private async Task ExpectInLakeAsync(Batch batch)
    {
        var sql = $"""
            SELECT probe_id,
                   count(*) FILTER (WHERE flow_protocol = 17 AND flow_dst_port = {DemoResponders.UdpPort} AND flow_payload_len = {8 + batch.UdpSize}) AS udp,
                   count(*) FILTER (WHERE icmpv6_type = 128 AND flow_payload_len = {8 + batch.PingSize}) AS requests,
                   count(*) FILTER (WHERE icmpv6_type = 129 AND flow_payload_len = {8 + batch.PingSize}) AS replies,
                   count(*) FILTER (WHERE dns_qname LIKE '%{batch.Zone}%' AND NOT dns_response) AS queries,
                   count(*) FILTER (WHERE dns_qname LIKE '%{batch.Zone}%' AND dns_response) AS answers
            FROM packets WHERE src = '{batch.Address}' OR dst = '{batch.Address}' GROUP BY ALL
            """;
        List<JsonObject> Rows() => _lake.Query(sql).Where(r => (long)r["udp"]! + (long)r["requests"]! + (long)r["replies"]! + (long)r["queries"]! + (long)r["answers"]! > 0).ToList();
        var expected = batch.Udp + batch.EchoRequests + batch.EchoReplies + batch.DnsQueries + batch.DnsAnswers;
        var rows = Rows();
        if (expected == 0)
        {
            Assert.True(rows.Count == 0, $"frames that should not be in the lake are: {string.Join("; ", rows)}");
            return;
        }

        bool Complete(JsonObject r) => (string?)r["probe_id"] == batch.ProbeId && (long)r["udp"]! == batch.Udp && (long)r["requests"]! == batch.EchoRequests
            && (long)r["replies"]! == batch.EchoReplies && (long)r["queries"]! == batch.DnsQueries && (long)r["answers"]! == batch.DnsAnswers;
        var probe = _cluster.Probes.First(p => p.ProbeId == batch.ProbeId);
        await Poll.UntilAsync(async () =>
        {
            rows = Rows();
            Assert.True(rows.Count <= 1, $"batch {batch} is in the lake under {rows.Count} probes: {string.Join("; ", rows)}");
            Assert.False(rows.Any(r => (long)r["udp"]! > batch.Udp || (long)r["requests"]! > batch.EchoRequests || (long)r["replies"]! > batch.EchoReplies
                || (long)r["queries"]! > batch.DnsQueries || (long)r["answers"]! > batch.DnsAnswers), $"batch {batch}: more in the lake than was sent: {string.Join("; ", rows)}");
            if (rows is [var row] && Complete(row))
                return true;
            // On a loaded machine frames can still sit in the kernel's capture buffer when the spool looked empty.
            await probe.RotateAsync();
            return false;
        }, Long, $"batch {batch} in the lake", () => string.Join("; ", rows));
    }

    /// <summary>flows and summary, rebuilt by the aggregate stage, agree with the packets and with what was sent.</summary>
    private async Task ExpectAggregatesAsync(Batch[] batches)
    {
        await Poll.UntilAsync(() =>
        {
            foreach (var b in batches)
            {
                // A flows row is one hour of a flow: a batch sent across the turn of an hour is two.
                var flow = _lake.Query($"SELECT probe_id, CAST(sum(packets) AS BIGINT) AS packets FROM flows WHERE flow_src = '{b.Address}' AND flow_protocol = 17 AND flow_dst_port = {DemoResponders.UdpPort} GROUP BY probe_id");
                if (flow is not [var f] || (string?)f["probe_id"] != b.ProbeId || (long)f["packets"]! != b.Udp)
                    return false;
            }

            var summary = _lake.Query("SELECT probe_id, sum(frames) AS frames, sum(udp_packets) AS udp FROM summary GROUP BY ALL");
            var packets = _lake.Query("SELECT probe_id, count(*) AS frames, count(*) FILTER (WHERE flow_protocol = 17) AS udp FROM packets GROUP BY ALL");
            return summary.Count == 3 && packets.All(p => summary.Any(s => (string?)s["probe_id"] == (string?)p["probe_id"]
                && s["frames"]!.GetValue<decimal>() == p["frames"]!.GetValue<decimal>() && s["udp"]!.GetValue<decimal>() == p["udp"]!.GetValue<decimal>()));
        }, Long, "flows and summary matching the packets", () => string.Join("\n", _lake.Query("SELECT * FROM summary")));
    }

    /// <summary>
    /// Nothing acknowledged lost, nothing twice: every upload the server recorded is in its store exactly once with
    /// that SHA-256; every stored capture is parsed once (or quarantined); every frame of a parsed capture is in the
    /// lake once; every file that left a probe's spool is on the server unless the disk guard evicted it; and per
    /// probe, lake + spool + open file + evicted = written.
    /// </summary>
    /// <remarks>
    /// The probes capture what the kernel sends on its own (neighbour discovery, MLD) at any time, so a file can close,
    /// travel to the server and into the lake while the accounting reads its parts one after the other. It must hold
    /// in a moment when nothing moves: a failed look waits for quiet and looks again, and the last failure stands once
    /// the time is up. A loss never adds up, however often it is looked at.
    /// </remarks>
    private async Task CheckNothingLostAsync()
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await CheckNothingLostOnceAsync();
                return;
            }
            catch (Xunit.Sdk.XunitException e) when (clock.Elapsed < Long)
            {
                Append("the accounting did not add up in this look, quiescing and looking again: " + e.Message);
                await QuiesceAsync();
            }
        }
    }

    private async Task CheckNothingLostOnceAsync()
    {
        var uploads = JsonNode.Parse(await _cluster.ServerCliAsync("server", "uploads", "--json", "--limit", "100000"))!.AsArray().Select(n => n!.AsObject()).ToList();
        var captures = Path.Combine(_cluster.ServerDirectory, "captures");
        var stored = Directory.EnumerateFiles(captures, "*.pcapng", SearchOption.AllDirectories).ToList();
        var storedBySha = stored.GroupBy(f => Path.GetFileNameWithoutExtension(f)).ToDictionary(g => g.Key, g => g.ToList());
        Assert.All(storedBySha, kv => Assert.True(kv.Value.Count == 1, $"{kv.Key} stored {kv.Value.Count} times"));
        foreach (var upload in uploads)
        {
            var sha = (string)upload["sha256"]!;
            Assert.True(storedBySha.TryGetValue(sha, out var files), $"acknowledged upload {sha} of {upload["probe_id"]} is not in the store");
            Assert.Contains(Path.DirectorySeparatorChar + (string)upload["probe_id"]! + Path.DirectorySeparatorChar, files![0], StringComparison.Ordinal);
        }

        Assert.Equal(uploads.Where(u => !(bool)u["duplicate"]!).Select(u => (string)u["sha256"]!).Distinct().Count(), uploads.Count(u => !(bool)u["duplicate"]!));
        Assert.Equal(storedBySha.Count, uploads.Where(u => !(bool)u["duplicate"]!).Select(u => (string)u["sha256"]!).Distinct().Count());
        foreach (var file in stored)
            Assert.Equal(Path.GetFileNameWithoutExtension(file), Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));

        // The probes' own traffic with the C&C never reaches the lake: they leave it out of their capture.
        var server = IPAddress.Parse(_cluster.Network.ServerAddress).ToString();
        Assert.Equal(0, _lake.Scalar($"SELECT count(*) FROM packets WHERE flow_protocol = 6 AND ((flow_src = '{server}' AND flow_src_port = {_cluster.GrpcPort}) OR (flow_dst = '{server}' AND flow_dst_port = {_cluster.GrpcPort}))"));

        // Parsed once, every frame once.
        var ledger = _lake.Ledger();
        var quarantined = ledger["quarantined"]!.AsArray().Select(q => (string)q!["sha256"]!).ToHashSet(StringComparer.Ordinal);
        Assert.Empty(ledger["failed"]!.AsArray());
        var lakeCaptures = _lake.Query("SELECT capture_sha256, count(*) AS n, max(frames) AS frames FROM captures GROUP BY ALL");
        Assert.All(lakeCaptures, c => Assert.Equal(1L, (long)c["n"]!));
        Assert.Equal(storedBySha.Keys.Where(k => !quarantined.Contains(k)).Order(StringComparer.Ordinal), lakeCaptures.Select(c => (string)c["capture_sha256"]!).Order(StringComparer.Ordinal));
        var packetsPerCapture = _lake.Query("SELECT capture_sha256, count(*) AS n, count(DISTINCT frame) AS distinct_frames FROM packets GROUP BY ALL")
            .ToDictionary(r => (string)r["capture_sha256"]!, r => ((long)r["n"]!, (long)r["distinct_frames"]!), StringComparer.Ordinal);
        foreach (var c in lakeCaptures.Where(c => (long)c["frames"]! > 0))
            Assert.Equal(((long)c["frames"]!, (long)c["frames"]!), packetsPerCapture[(string)c["capture_sha256"]!]);
        Assert.Equal(0, _lake.Scalar("SELECT count(*) FROM (SELECT probe_id, time_epoch_ns, frame_hash FROM packets GROUP BY ALL HAVING count(*) > 1)"));

        // Probe side.
        var serverShas = storedBySha.Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var probe in _cluster.Probes)
        {
            var status = (await probe.TryStatusAsync())!;
            Assert.NotNull(status);
            var book = _books[probe.ProbeId];
            var inSpool = SpoolManifests(probe);
            var gone = _seenInSpool.Where(kv => kv.Key.StartsWith(probe.ProbeId + "/", StringComparison.Ordinal) && !inSpool.ContainsKey(kv.Key[(probe.ProbeId.Length + 1)..]))
                .Select(kv => kv.Value).ToList();
            var missing = gone.Where(sha => !serverShas.Contains(sha)).ToList();
            Assert.True(missing.Count <= status.Spool.EvictedFiles,
                $"probe {probe.Host.Index}: {missing.Count} files left the spool without reaching the server, {status.Spool.EvictedFiles} evicted");
            var lakeFrames = _lake.Scalar($"SELECT count(*) FROM packets WHERE probe_id = '{probe.ProbeId}'");
            var spoolFrames = inSpool.Values.Sum(m => m.Frames);
            Assert.True(lakeFrames + spoolFrames + status.Spool.CurrentFileFrames + status.Spool.EvictedFrames + book.PriorEvicted == status.Capture.Written + book.PriorWritten + book.UploadedByHand,
                $"probe {probe.Host.Index}: lake {lakeFrames} + spool {spoolFrames} + open {status.Spool.CurrentFileFrames} + evicted {status.Spool.EvictedFrames}+{book.PriorEvicted} != written {status.Capture.Written}+{book.PriorWritten} + uploaded by hand {book.UploadedByHand}");
            Assert.Equal(status.Capture.Captured, status.Capture.Written + status.Capture.QueueDropped + status.Capture.DiskDropped);
        }
    }

    /// <summary>Waits until every running, unrevoked probe has uploaded everything and the aggregator has parsed every stored capture.</summary>
    private async Task QuiesceAsync()
    {
        foreach (var probe in _cluster.Probes.Where(p => !_books[p.ProbeId].Revoked))
        {
            await Poll.UntilAsync(async () =>
            {
                var status = await probe.TryStatusAsync();
                if (status is { Spool.CurrentFileFrames: > 0 })
                    await probe.RotateAsync();
                return status is { Spool.Files: 0, Spool.CurrentFileFrames: 0, Capture.QueueDepth: 0 };
            }, Long, $"probe {probe.Host.Index}'s spool empty", () => StatusText(probe) + "\n" + probe.Daemon?.Output[^Math.Min(3000, probe.Daemon.Output.Length)..]);
        }

        var captures = Path.Combine(_cluster.ServerDirectory, "captures");
        await Poll.UntilAsync(() =>
        {
            var stored = Directory.Exists(captures) ? Directory.EnumerateFiles(captures, "*.manifest.json", SearchOption.AllDirectories).Count() : 0;
            var counts = _lake.Ledger()["captures"]!.AsObject();
            var known = counts.Sum(kv => kv.Value!.GetValue<long>());
            return known == stored;
        }, Long, "the aggregator to take every stored capture", () => _lake.Ledger().ToJsonString() + "\n" + Tail(_cluster.Server!.Output));
    }

    private async Task ExpectStatesAsync(Dictionary<string, string> expected)
    {
        JsonArray? last = null;
        await Poll.UntilAsync(async () =>
        {
            using var response = await _api.GetAsync("api/v1/probes");
            if (response.StatusCode != HttpStatusCode.OK)
                return false;
            last = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["items"]!.AsArray();
            return last.Count == expected.Count && last.All(p => expected.TryGetValue((string)p!["id"]!, out var state) && state == (string?)p["state"]);
        }, Long, "probe states " + string.Join(", ", expected.Select(kv => kv.Key + "=" + kv.Value)), () => last?.ToJsonString() ?? "no answer from /api/v1/probes");
    }

    private async Task<JsonObject> ApiProbeAsync(string id) =>
        JsonNode.Parse(await _api.GetStringAsync("api/v1/probes/" + id))!.AsObject();

    private async Task RestartProbeAsync(DemoProbe probe, IReadOnlyDictionary<string, string>? environment)
    {
        await QuiesceAsync();
        var daemon = probe.Daemon!;
        var status = (await probe.TryStatusAsync())!;
        await _cluster.StopProbeAsync(probe);
        var book = _books[probe.ProbeId];

        // The kernel's own packets (neighbour discovery) may be written between the status read and the stop, so the
        // written count comes from the totals the daemon reports as each capture run stops.
        var stopped = CaptureRunStopped().Matches(daemon.Output).Select(m => long.Parse(m.Groups["written"].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.True(stopped.Count > 0, $"probe {probe.Host.Index} stopped without reporting its capture totals:\n{Tail(daemon.Output)}");
        Assert.True(stopped.Sum() >= status.Capture.Written, $"probe {probe.Host.Index} reported {stopped.Sum()} written at stop, fewer than {status.Capture.Written} before it");
        book.PriorWritten += stopped.Sum();
        book.PriorEvicted += status.Spool.EvictedFrames;
        await _cluster.StartProbeAsync(probe, environment);
    }

    /// <summary>Records every manifest seen in a spool, so that a file that later leaves it can be looked for on the server.</summary>
    private async Task SampleSpoolsAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var probe in _cluster.Probes)
            {
                foreach (var (file, manifest) in SpoolManifests(probe))
                    _seenInSpool.TryAdd(probe.ProbeId + "/" + file, manifest.Sha256);
            }

            try
            {
                await Task.Delay(100, cancellationToken);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private Dictionary<string, (string Sha256, long Frames)> SpoolManifests(DemoProbe probe)
    {
        var result = new Dictionary<string, (string, long)>(StringComparer.Ordinal);
        var spool = probe.Host.Index == 2 ? null : Path.Combine(probe.StateDirectory, "spool");
        foreach (var directory in new[] { spool, TmpfsOf(probe) }.OfType<string>().Where(Directory.Exists))
        {
            foreach (var manifest in Directory.EnumerateFiles(directory, "*.manifest.json"))
            {
                try
                {
                    var json = JsonNode.Parse(File.ReadAllText(manifest))!;
                    result[(string)json["file"]!] = ((string)json["sha256"]!, json["frames"]!.GetValue<long>());
                }
                catch (Exception e) when (e is IOException or System.Text.Json.JsonException)
                {
                    // Completed (deleted) or being replaced between the listing and the read.
                }
            }
        }

        return result;
    }

    /// <summary>Probe 2's spool: the tmpfs its settings name (<c>Probe:Spool:Directory</c>), not its state directory.</summary>
    private string? TmpfsOf(DemoProbe probe) => probe.Host.Index == 2 ? _spoolDisk!.Path : null;

    private static void FillDisk(string file, long keepFree)
    {
        var info = new DriveInfo(Path.GetDirectoryName(file)!);
        using var stream = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
        var chunk = new byte[64 << 10];
        while (info.AvailableFreeSpace > keepFree + chunk.Length)
        {
            stream.Write(chunk);
            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>
    /// A well-framed pcapng (SHB, Ethernet IDB, EPBs) whose frames are IPv6 packets with random bytes and a payload
    /// length that does not match: readable to its end, every packet malformed.
    /// </summary>
    private static byte[] GarbageCapture(int frames)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write(0x0A0D0D0Au); writer.Write(28u); writer.Write(0x1A2B3C4Du); writer.Write((ushort)1); writer.Write((ushort)0); writer.Write(-1L); writer.Write(28u);
        writer.Write(1u); writer.Write(20u); writer.Write((ushort)1); writer.Write((ushort)0); writer.Write(0u); writer.Write(20u);
        var micros = (ulong)(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000);
        for (var i = 0; i < frames; i++)
        {
            var frame = new byte[14 + 40 + 64];
            RandomNumberGenerator.Fill(frame);
            frame[12] = 0x86; frame[13] = 0xDD; // IPv6
            frame[14] = 0x60;
            frame[18] = 0xFF; frame[19] = 0xFF; // payload length 65535, far more than there is
            var padded = (frame.Length + 3) & ~3;
            var length = (uint)(32 + padded);
            writer.Write(6u); writer.Write(length); writer.Write(0u);
            var ts = micros + (ulong)i;
            writer.Write((uint)(ts >> 32)); writer.Write((uint)ts);
            writer.Write((uint)frame.Length); writer.Write((uint)frame.Length);
            writer.Write(frame); writer.Write(new byte[padded - frame.Length]);
            writer.Write(length);
        }

        writer.Flush();
        return stream.ToArray();
    }

    private static async Task<bool> CatchAsync(Func<bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (condition())
                return true;
            await Task.Delay(10);
        }

        return false;
    }

    /// <summary>What the kernel sends on its own, in the lake: MLD (130-132, 143), router and neighbour discovery (133-137).</summary>
    private const string KernelOwn = "coalesce(icmpv6_type BETWEEN 130 AND 137 OR icmpv6_type = 143, false)";

    private static string Address(DemoProbe probe) => IPAddress.Parse(probe.Host.Address).ToString();

    private static long Nanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    private string StatusText(DemoProbe probe) =>
        System.Text.Json.JsonSerializer.Serialize(probe.TryStatusAsync().GetAwaiter().GetResult());

    /// <summary>The daemon's report as a capture run stops (<c>ProbeLog.CaptureStopped</c>).</summary>
    [GeneratedRegex(@"Capture run \d+ stopped \([^)]*\): \d+ frames captured, (?<written>\d+) written;")]
    private static partial Regex CaptureRunStopped();

    private static string Tail(string text) => text[^Math.Min(4000, text.Length)..];

    private void Phase(string what)
    {
        var line = $"=== {_clock.Elapsed.TotalSeconds,6:0.0} s  {what}";
        Append(line);
        output.WriteLine(line);
    }

    private void Append(string line)
    {
        lock (_log)
            _log.AppendLine(line);
    }

    private string Log
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }
}

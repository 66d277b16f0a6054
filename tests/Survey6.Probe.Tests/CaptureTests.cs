using System.Net;
using System.Net.Sockets;
using Survey6.Packets.Capture;
using Survey6.Probe.Capture;
using Survey6.Probe.Tests.Support;
using Xunit.Abstractions;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>
/// Real capture: traffic sent from a test's network namespace crosses a veth pair and is captured by
/// the probe on the host end; the spool files are read back with the packet core's reader.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class CaptureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Ping_UDP_and_TCP_arrive_in_the_spool_as_sent_with_manifests_and_counters_that_agree()
    {
        const int Pings = 10, Datagrams = 25, DatagramSize = 100, Connections = 3, ConnectionBytes = 1000;
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        using var listener = new TcpListener(IPAddress.Parse(lab.HostAddress), 0);
        listener.Start();
        var tcpPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        var udpPort = 40000 + Random.Shared.Next(20000);
        var server = AcceptAsync(listener, Connections);

        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface));
        probe.RequireCapturing();
        lab.Ping(lab.HostAddress, Pings);
        lab.Send("udp", lab.HostAddress, udpPort.ToString(), Datagrams.ToString(), DatagramSize.ToString());
        lab.Send("tcp", lab.HostAddress, tcpPort.ToString(), Connections.ToString(), ConnectionBytes.ToString());
        Assert.Equal(Connections * ConnectionBytes, await server.WaitAsync(TimeSpan.FromSeconds(90)));
        await probe.WaitForQueueDrainedAsync(atLeast: Datagrams);
        await probe.StopAsync();

        var files = SpoolContents.Read(probe.Spool.Root);
        var frames = files.SelectMany(f => f.Frames).ToList();
        var (ns, host) = (lab.NamespaceAddress, lab.HostAddress);
        Assert.Equal(Pings, frames.Count(f => f.IsEchoRequest(ns, host)));
        Assert.Equal(Pings, frames.Count(f => f.IsEchoReply(host, ns)));
        var datagrams = frames.Where(f => f.Is(ns, host) && f.NextHeader == 17 && f.DestinationPort == udpPort).ToList();
        Assert.Equal(Datagrams, datagrams.Count);
        Assert.All(datagrams, d => Assert.Equal(DatagramSize, d.TransportPayload));
        var toServer = frames.Where(f => f.Is(ns, host) && f.NextHeader == 6 && f.DestinationPort == tcpPort).ToList();
        Assert.Equal(Connections, toServer.Count(f => (f.TcpFlags & 0x12) == 0x02)); // SYN without ACK
        Assert.Equal(Connections * ConnectionBytes, toServer.Sum(f => f.TransportPayload));
        Assert.All(frames, f => Assert.Equal("native", f.Encapsulation)); // the filter let nothing else in

        // What the probe counted is what the files say, file by file and over the run.
        var totals = probe.Engine.Totals();
        Assert.Equal(totals.Captured, totals.Written);
        Assert.Equal(0, totals.QueueDropped + totals.DiskDropped);
        Assert.Equal(totals.Written, frames.Count);
        Assert.True(totals.PcapReceived >= totals.Captured, $"ps_recv {totals.PcapReceived} < {totals.Captured} delivered");
        long? previousEnd = null;
        foreach (var file in files)
        {
            AssertDescribes(file, lab.HostInterface);
            var isb = Assert.Single(file.Statistics);
            Assert.Equal((ulong)file.Frames.Count, isb.UserDelivered);
            Assert.True(isb.StartTimeNanoseconds < isb.EndTimeNanoseconds);
            if (previousEnd is not null)
                Assert.Equal(previousEnd, isb.StartTimeNanoseconds); // windows are contiguous
            previousEnd = isb.EndTimeNanoseconds;
        }

        Assert.Equal((ulong)totals.PcapReceived, Sum(files, s => s.InterfaceReceived));
        Assert.Equal((ulong)totals.KernelDropped, Sum(files, s => s.OsDropped));
        Assert.Equal((ulong)totals.InterfaceDropped, Sum(files, s => s.InterfaceDropped));
        Assert.Equal("stop", files[^1].CloseReason);
        Assert.Equal(totals.PcapReceived, files.Sum(f => f.Manifest.GetProperty("received").GetInt64()));

        AssertTsharkReadsAll(files);
    }

    /// <summary>
    /// A stop right after traffic: libpcap gets frames in blocks that the kernel hands over when the read timeout
    /// passes, so the frames of the open block are read before the interface is closed, not lost with it. A read
    /// timeout of 2 s makes sure the stop comes while the block is open, as a <c>systemctl restart</c> 10 ms after
    /// traffic did with the default 100 ms.
    /// </summary>
    [Fact]
    public async Task A_stop_right_after_traffic_keeps_every_frame_the_kernel_captured()
    {
        const int Datagrams = 50;
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        var udpPort = 40000 + Random.Shared.Next(20000);
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface, ("Probe:Capture:ReadTimeout", "00:00:02")));
        probe.RequireCapturing();
        lab.Send("udp", lab.HostAddress, udpPort.ToString(), Datagrams.ToString(), "100");
        await probe.StopAsync();

        var frames = SpoolContents.Read(probe.Spool.Root).SelectMany(f => f.Frames).ToList();
        Assert.Equal(Datagrams, frames.Count(f => f.Is(lab.NamespaceAddress, lab.HostAddress) && f.NextHeader == 17 && f.DestinationPort == udpPort));
        var totals = probe.Engine.Totals();
        Assert.Equal(totals.Captured, totals.Written);
    }

    /// <summary>6in4 and Teredo, on its port and on another one, are captured by the default filter; plain IPv4 is not.</summary>
    [Fact]
    public async Task Ipv6_in_6in4_and_Teredo_is_captured()
    {
        const int Pings = 5, TeredoPackets = 4;
        const int TeredoPort = 40123, PlainUdpPort = 40124;
        using var lab = new NetworkLab(ipv4: true);
        using var state = new TempDirectory();
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface));
        probe.RequireCapturing();

        string from, to;
        bool realTunnel;
        if (lab.TryAddSitTunnel(out var hostEnd, out var namespaceEnd, out var reason))
        {
            (from, to, realTunnel) = (namespaceEnd, hostEnd, true);
            lab.Ping(hostEnd, Pings);
        }
        else
        {
            // This kernel has no sit driver: the namespace's kernel still puts the IPv6 packets in
            // IPv4 protocol 41 on the wire (raw socket), which is what the probe must capture.
            output.WriteLine($"no sit tunnel ({reason}); sending 6in4 through a raw IPv4 socket");
            (from, to, realTunnel) = (lab.NamespaceAddress, lab.HostAddress, false);
            lab.Send("6in4", lab.HostIPv4!, from, to, Pings.ToString());
        }

        lab.Send("teredo", lab.HostIPv4!, lab.NamespaceAddress, lab.HostAddress, TeredoPackets.ToString());
        // A Teredo client talks to relays and peers on any port.
        lab.Send("teredo", lab.HostIPv4!, lab.NamespaceAddress, lab.HostAddress, TeredoPackets.ToString(), TeredoPort.ToString());
        lab.InNamespace("ping", "-4", "-n", "-q", "-c", "3", "-i", "0.02", lab.HostIPv4!); // plain IPv4: not for the probe
        lab.Send("udp", lab.HostIPv4!, PlainUdpPort.ToString(), "20", "64");
        await probe.WaitForQueueDrainedAsync(atLeast: TeredoPackets);
        await probe.StopAsync();

        var frames = SpoolContents.Read(probe.Spool.Root).SelectMany(f => f.Frames).ToList();
        Assert.Equal(Pings, frames.Count(f => f.Encapsulation == "6in4" && f.IsEchoRequest(from, to)));
        if (realTunnel)
            Assert.Equal(Pings, frames.Count(f => f.Encapsulation == "6in4" && f.IsEchoReply(to, from)));
        Assert.Equal(2 * TeredoPackets, frames.Count(f => f.Encapsulation == "teredo" && f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.DoesNotContain(frames, f => f.Encapsulation == "other");
        Assert.DoesNotContain(frames, f => f.Encapsulation == "ipv4");
    }

    [Fact]
    public async Task Privacy_mode_keeps_only_the_first_bytes_of_each_frame()
    {
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface,
            ("Probe:Capture:PrivacyMode", "true"), ("Probe:Capture:PrivacySnapLength", "96")));
        probe.RequireCapturing();
        lab.Ping(lab.HostAddress, 3, size: 1200);
        await probe.WaitForQueueDrainedAsync(atLeast: 6);
        await probe.StopAsync();

        var files = SpoolContents.Read(probe.Spool.Root);
        Assert.All(files, f => Assert.Equal(96u, Assert.Single(f.SnapLengths)));
        var echoes = files.SelectMany(f => f.Frames).Where(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)).ToList();
        Assert.Equal(3, echoes.Count);
        Assert.All(echoes, e => Assert.Equal(96, e.CapturedLength));
        Assert.All(echoes, e => Assert.Equal(14u + 40 + 8 + 1200, e.OriginalLength));
        Assert.All(files, f => Assert.Equal(96, f.Manifest.GetProperty("snaplen").GetInt32()));
    }

    [Fact]
    public async Task Two_interfaces_get_an_interface_block_and_a_statistics_block_each()
    {
        using var first = new NetworkLab();
        using var second = new NetworkLab();
        using var state = new TempDirectory();
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, first.HostInterface,
            ("Probe:Capture:Interfaces:1", second.HostInterface)));
        probe.RequireCapturing();
        first.Ping(first.HostAddress, 3);
        second.Ping(second.HostAddress, 5);
        await probe.WaitForQueueDrainedAsync(atLeast: 2 * (3 + 5));
        await probe.StopAsync();

        var files = SpoolContents.Read(probe.Spool.Root);
        Assert.All(files, f => Assert.Equal([first.HostInterface, second.HostInterface], f.InterfaceNames));
        Assert.All(files, f => Assert.Equal([0, 1], f.Statistics.Select(s => s.InterfaceId)));
        var frames = files.SelectMany(f => f.Frames).ToList();
        Assert.Equal(3, frames.Count(f => f.InterfaceId == 0 && f.IsEchoRequest(first.NamespaceAddress, first.HostAddress)));
        Assert.Equal(5, frames.Count(f => f.InterfaceId == 1 && f.IsEchoRequest(second.NamespaceAddress, second.HostAddress)));
        foreach (var file in files)
        {
            for (var id = 0; id < 2; id++)
                Assert.Equal((ulong)file.Frames.Count(f => f.InterfaceId == id), file.Statistics[id].UserDelivered);
            var described = file.Manifest.GetProperty("interfaces").EnumerateArray().Select(i => i.GetProperty("frames").GetInt64()).ToList();
            Assert.Equal([file.Frames.LongCount(f => f.InterfaceId == 0), file.Frames.LongCount(f => f.InterfaceId == 1)], described);
        }
    }

    [Fact]
    public async Task Captures_on_the_any_device()
    {
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        // The product's filter: whatever else the machine carries is captured too, and the counts below pick the lab's echoes.
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, null));
        probe.RequireCapturing();
        lab.Ping(lab.HostAddress, 4);
        await probe.WaitForQueueDrainedAsync(atLeast: 2 * 4);
        await probe.StopAsync();

        var files = SpoolContents.Read(probe.Spool.Root);
        Assert.All(files, f => Assert.Equal(["any"], f.InterfaceNames));
        var frames = files.SelectMany(f => f.Frames).ToList();
        // In the host's namespace the echoes cross only the host end of the veth: each is seen once.
        Assert.Equal(4, frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.Equal(4, frames.Count(f => f.IsEchoReply(lab.HostAddress, lab.NamespaceAddress)));
        Assert.All(files, f => Assert.Equal(113, f.Manifest.GetProperty("interfaces")[0].GetProperty("link_type").GetInt32()));
    }

    /// <summary>The manifest describes the file's bytes; the SHB and IDB carry the probe's metadata.</summary>
    internal static void AssertDescribes(SpoolCapture file, string captureInterface)
    {
        var m = file.Manifest;
        Assert.Equal(Path.GetFileName(file.Path), m.GetProperty("file").GetString());
        Assert.Equal(file.Sha256, m.GetProperty("sha256").GetString());
        Assert.Equal(file.Size, m.GetProperty("size").GetInt64());
        Assert.Equal(file.Frames.Count, m.GetProperty("frames").GetInt64());
        Assert.Equal("p-test", m.GetProperty("probe_id").GetString());
        Assert.Equal("lab", m.GetProperty("labels").GetProperty("site").GetString());
        Assert.Equal("52.52,13.405,DE,Berlin", m.GetProperty("location").GetString());
        Assert.Equal(captureInterface, m.GetProperty("interface").GetString());
        Assert.Equal(CaptureOptions.DefaultFilter, m.GetProperty("filter").GetString());
        Assert.False(m.GetProperty("repaired").GetBoolean());
        Assert.Equal(0, m.GetProperty("drops").GetProperty("queue").GetInt64());
        Assert.Equal(0, m.GetProperty("drops").GetProperty("disk").GetInt64());
        if (file.Frames.Count > 0)
        {
            Assert.Equal(PcapngMetadata.FormatTimestamp(file.Frames[0].TimestampNanoseconds), m.GetProperty("first_frame").GetString());
            Assert.Equal(PcapngMetadata.FormatTimestamp(file.Frames[^1].TimestampNanoseconds), m.GetProperty("last_frame").GetString());
        }

        Assert.Equal("p-test", file.Metadata[PcapngMetadata.ProbeId]);
        Assert.Equal("role=test;site=lab", file.Metadata[PcapngMetadata.Labels]);
        Assert.Equal("52.52,13.405,DE,Berlin", file.Metadata[PcapngMetadata.Location]);
        Assert.True(file.Metadata.ContainsKey(PcapngMetadata.Hostname));
        Assert.True(file.Metadata.ContainsKey(PcapngMetadata.Version));
        Assert.True(file.Metadata.ContainsKey(PcapngMetadata.CaptureStart));
        Assert.Equal([captureInterface], file.InterfaceNames);
        Assert.Equal([CaptureOptions.DefaultFilter], file.Filters);
    }

    /// <summary><c>tshark -r</c> reads the file to its end, counts every frame, and warns about nothing.</summary>
    internal static void AssertTsharkReads(string path, int frames)
    {
        var result = Tool.Run("tshark", "-n", "-r", path, "-T", "fields", "-e", "frame.number").Check();
        Assert.True(result.Stderr.Length == 0, $"tshark on {Path.GetFileName(path)}: {result.Stderr}");
        Assert.Equal(frames, result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    /// <summary>Every file, in parallel (tshark spends its second mostly starting up).</summary>
    internal static void AssertTsharkReadsAll(IEnumerable<SpoolCapture> files) =>
        Task.WaitAll([.. files.Select(f => Task.Run(() => AssertTsharkReads(f.Path, f.Frames.Count)))]);

    private static ulong Sum(IEnumerable<SpoolCapture> files, Func<InterfaceStatistics, ulong?> counter) =>
        files.Aggregate(0UL, (sum, f) => sum + (counter(Assert.Single(f.Statistics)) ?? throw new InvalidOperationException("counter missing")));

    private static async Task<int> AcceptAsync(TcpListener listener, int connections)
    {
        var total = 0;
        var buffer = new byte[4096];
        for (var i = 0; i < connections; i++)
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
                total += n;
        }

        return total;
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Survey6.Testbed;
using Survey6.Packets.Addresses;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Probe.Capture;
using Xunit.Abstractions;

namespace Survey6.EndToEnd.Tests;

/// <summary>
/// A probe must not capture its own traffic with the C&amp;C, or it uploads its uploads again, forever. Set up as a person
/// would: <c>survey6 server run</c> listening on the address of the lab's bridge (a veth away from the probe), one probe
/// in a network namespace joined with the printed command, running the product's defaults apart from its interface
/// and a short rotation. The link carries nothing but a slow ping (so that every rotation stores a file to look at) and
/// what the kernel sends on its own. The stored captures must hold no packet to or from the server's address and port,
/// and what they store per rotation must not grow; the same holds under a server policy whose filter takes TCP; with
/// <c>Probe:Capture:ExcludeOwnTraffic</c> off the C&amp;C's traffic is captured again.
/// </summary>
[Collection(WholeSystemTests.Collection)]
public sealed class OwnTrafficTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Rotations = 6;
    private const int MarkerSize = 100;
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(240);
    private readonly StringBuilder _log = new();
    private string _root = "";
    private DemoCluster _cluster = null!;
    private Process? _marker;

    public async Task InitializeAsync()
    {
        Tool.RequireRoot();
        _root = Directory.CreateTempSubdirectory("s6own-").FullName;
        _cluster = await DemoCluster.StartAsync(new DemoClusterOptions
        {
            Directory = _root,
            Probes = 1,
            QuickProbes = false,
            RotateAge = TimeSpan.FromSeconds(5),
            Echo = line =>
            {
                lock (_log)
                    _log.AppendLine(line);
            },
        });
    }

    public async Task DisposeAsync()
    {
        if (_marker is { } marker)
        {
            if (!marker.HasExited)
                marker.Kill();
            await marker.WaitForExitAsync();
            marker.Dispose();
        }

        if (_cluster is not null)
            await _cluster.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }

        lock (_log)
            output.WriteLine(_log.ToString());
    }

    [Fact]
    public async Task A_probe_on_the_product_defaults_never_stores_its_own_uploads_and_what_it_stores_per_rotation_stays_flat()
    {
        var probe = _cluster.Probes[0];
        var server = Ipv6Address.Parse(_cluster.Network.ServerAddress);
        var port = _cluster.GrpcPort;
        var own = OwnTrafficFilter.Expression([IPAddress.Parse(_cluster.Network.ServerAddress)], port);
        var status = (await probe.TryStatusAsync())!;
        var applied = OwnTrafficFilter.Compose(CaptureOptions.DefaultFilter, own);
        Assert.Equal(applied, status.Filter);
        Assert.Equal(CaptureOptions.DefaultFilter, status.Policy!.Filter);
        Assert.True(status.OwnTraffic!.LeftOut);
        _marker = StartMarker(probe.Host, _cluster.Network.ServerAddress);

        // 1. The product's defaults.
        List<StoredCapture> files = [];
        await Poll.UntilAsync(() => (files = Stored(probe, server, port)).Count(f => f.Markers > 0) >= Rotations, Long,
            $"{Rotations} rotations stored", () => Describe(files) + Tail(probe));
        Report("product defaults", files);
        Assert.All(files, f => Assert.Equal(applied, f.Filter));
        Assert.All(files, f => Assert.True(f.Own == 0, $"{f.Name} holds {f.Own} packets to or from the C&C [{server}]:{port}"));
        // Nothing but the marker and the kernel's neighbour discovery and MLD: no rotation carries the previous upload.
        Assert.All(files, f => Assert.True(f.Other == 0, $"{f.Name} holds {f.Other} packets of unknown origin"));
        Assert.All(files, f => Assert.True(f.Bytes - f.MarkerBytes <= MaxOverhead, $"{f.Name}: {f.Bytes - f.MarkerBytes} bytes besides the marker"));

        // 2. A server policy whose filter takes TCP: the C&C is taken out of it, other TCP to the same host is not.
        await _cluster.ServerCliAsync("server", "probe", "update-policy", probe.ProbeId, "--capture-filter", "tcp or icmp6");
        applied = OwnTrafficFilter.Compose("tcp or icmp6", own);
        await Poll.UntilAsync(async () => await probe.TryStatusAsync() is { Policy.Filter: "tcp or icmp6" } s && s.Filter == applied, Long, "the policy applied", () => Tail(probe));
        Assert.Equal(3, await DemoSender.TcpAsync(probe.Host, _cluster.Network.ServerAddress, 3, 1500));
        await Poll.UntilAsync(() => (files = [.. Stored(probe, server, port).Where(f => f.Filter == applied)]).Count >= 3 && files.Sum(f => f.ResponderConnections) >= 3, Long,
            "three rotations under the policy stored, with the connections to the TCP responder", () => Describe(files) + Tail(probe));
        Report("policy 'tcp or icmp6'", files);
        Assert.Equal(3, files.Sum(f => f.ResponderConnections));
        Assert.All(files, f => Assert.True(f.Own == 0, $"{f.Name} holds {f.Own} packets to or from the C&C [{server}]:{port}"));

        // 3. The setting off: the C&C's traffic is captured (and uploaded again) as before.
        await _cluster.StopProbeAsync(probe);
        await _cluster.StartProbeAsync(probe, new Dictionary<string, string> { ["Probe__Capture__ExcludeOwnTraffic"] = "false" });
        status = (await probe.TryStatusAsync())!;
        Assert.Equal(("tcp or icmp6", false), (status.Filter, status.OwnTraffic!.LeftOut));
        await Poll.UntilAsync(() => (files = [.. Stored(probe, server, port).Where(f => f.Filter == "tcp or icmp6")]).Sum(f => f.Own) > 0, Long,
            "the C&C's traffic in a stored capture with the setting off", () => Describe(files) + Tail(probe));
        Report("ExcludeOwnTraffic false", files);
    }

    /// <summary>SHB, IDB (its filter names the C&amp;C), ISB and a handful of neighbour discovery and MLD packets.</summary>
    private const long MaxOverhead = 6 << 10;

    /// <summary>Every capture the server stored for the probe, oldest first, each packet sorted by where it came from.</summary>
    private List<StoredCapture> Stored(DemoProbe probe, Ipv6Address server, int port)
    {
        var directory = Path.Combine(_cluster.ServerDirectory, "captures", probe.ProbeId);
        if (!Directory.Exists(directory))
            return [];
        var responder = Ipv6Address.Parse(_cluster.Network.ServerAddress);
        var result = new List<StoredCapture>();
        foreach (var path in Directory.EnumerateFiles(directory, "*.pcapng", SearchOption.AllDirectories))
        {
            var file = new StoredCapture(Path.GetFileName(path), new FileInfo(path).Length);
            using var reader = OpenShared(path);
            while (reader.TryRead(out var frame))
            {
                var record = default(PacketRecord);
                PacketDissector.Dissect(frame.Data, frame.LinkType, ref record);
                file.Add(Classify(record, server, port), frame.TimestampNanoseconds, 32 + ((frame.Data.Length + 3) & ~3));
            }

            Assert.True(reader.Error is null, $"{path}: {reader.Error}");
            file.Filter = reader.Interfaces.Count > 0 ? reader.Interfaces[0].Filter : null;
            result.Add(file);
        }

        return [.. result.OrderBy(f => f.FirstFrame)];
    }

    /// <summary>The server holds a stored capture exclusively for a moment now and then (flock); wait for it.</summary>
    private static CaptureReader OpenShared(string path)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return CaptureReader.Open(path);
            }
            catch (IOException) when (attempt < 100 && File.Exists(path))
            {
                Thread.Sleep(50);
            }
        }
    }

    private static Origin Classify(in PacketRecord r, Ipv6Address server, int port)
    {
        if (!r.Has(FieldPresence.Flow))
            return Origin.Other;
        if (r.FlowProtocol == PacketDissector.ProtocolTcp
            && ((r.FlowSource == server && r.FlowSourcePort == port) || (r.FlowDestination == server && r.FlowDestinationPort == port)))
            return Origin.Own;
        if (r.FlowProtocol == PacketDissector.ProtocolIcmpv6 && r.Icmpv6Type is 128 or 129 && r.FlowPayloadBytes == 8 + MarkerSize)
            return Origin.Marker;
        // MLD (130-132, 143), router and neighbour discovery (133-137): the kernel's own.
        if (r.FlowProtocol == PacketDissector.ProtocolIcmpv6 && r.Icmpv6Type is >= 130 and <= 137 or 143)
            return Origin.Kernel;
        if (r.FlowProtocol == PacketDissector.ProtocolTcp && r.FlowDestination == server && r.FlowDestinationPort == DemoResponders.TcpPort && (r.TcpFlags & 0x12) == 0x02)
            return Origin.ResponderSyn;
        if (r.FlowProtocol == PacketDissector.ProtocolTcp && (r.FlowDestinationPort == DemoResponders.TcpPort || r.FlowSourcePort == DemoResponders.TcpPort))
            return Origin.Responder;
        return Origin.Other;
    }

    /// <summary>Two echo requests a second from the host to the server's address, for at most ten minutes.</summary>
    private static Process StartMarker(DemoHost host, string server)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "netns", "exec", host.Namespace, "ping", "-6", "-n", "-q", "-i", "0.5", "-s", MarkerSize.ToString(CultureInfo.InvariantCulture), "-w", "600", server })
            start.ArgumentList.Add(argument);
        return Process.Start(start) ?? throw new InvalidOperationException("cannot start ping");
    }

    private void Report(string phase, List<StoredCapture> files)
    {
        var line = $"{phase}: stored size per rotation (KB): {string.Join(" ", files.Select(f => (f.Bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture)))}";
        output.WriteLine(line);
        output.WriteLine(Describe(files));
        lock (_log)
            _log.AppendLine(line);
    }

    private static string Describe(List<StoredCapture> files) =>
        string.Join("\n", files.Select(f => $"  {f.Name}: {f.Bytes} bytes, {f.Frames} frames: own {f.Own}, marker {f.Markers}, kernel {f.Kernel}, responder {f.ResponderConnections}, other {f.Other}; filter {f.Filter?.Length} characters")) + "\n";

    private static string Tail(DemoProbe probe) => probe.Daemon?.Output is { } text ? text[^Math.Min(3000, text.Length)..] : "";

    private enum Origin
    {
        Own,
        Marker,
        Kernel,
        Responder,
        ResponderSyn,
        Other,
    }

    private sealed class StoredCapture(string name, long bytes)
    {
        public string Name { get; } = name;

        public long Bytes { get; } = bytes;

        public string? Filter { get; set; }

        public long FirstFrame { get; private set; } = long.MaxValue;

        public int Frames { get; private set; }

        public int Own { get; private set; }

        public int Markers { get; private set; }

        public long MarkerBytes { get; private set; }

        public int Kernel { get; private set; }

        public int ResponderConnections { get; private set; }

        public int Other { get; private set; }

        public void Add(Origin origin, long timestamp, int blockBytes)
        {
            Frames++;
            FirstFrame = Math.Min(FirstFrame, timestamp);
            switch (origin)
            {
                case Origin.Own:
                    Own++;
                    break;
                case Origin.Marker:
                    Markers++;
                    MarkerBytes += blockBytes;
                    break;
                case Origin.Kernel:
                    Kernel++;
                    break;
                case Origin.ResponderSyn:
                    ResponderConnections++;
                    break;
                case Origin.Responder:
                    break;
                default:
                    Other++;
                    break;
            }
        }
    }
}

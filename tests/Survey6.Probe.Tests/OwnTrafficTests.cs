using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Survey6.Contracts.V1;
using Survey6.Probe.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>
/// The probe leaves its own traffic with its C&amp;C out of the capture: the server's addresses, resolved again when
/// they may have changed, are taken out of whatever filter is in force (configured or a server's policy), and status,
/// IDBs and manifests show the filter libpcap applies. Live on a veth: a C&amp;C endpoint named in probe.json (no server
/// needed for what the capture does), TCP to it and to another port of the same host.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class OwnTrafficTests
{
    private static readonly IPAddress A = IPAddress.Parse("2001:db8:5e::1");
    private static readonly IPAddress B = IPAddress.Parse("2001:db8:5e::2");
    private static readonly IPAddress C = IPAddress.Parse("192.0.2.7");

    [Fact]
    public async Task A_host_name_is_resolved_again_and_only_a_change_restarts_the_capture()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        IPAddress[] answer = [A];
        Exception? failure = null;
        var lookups = 0;
        Task<IPAddress[]> Resolve(string host, CancellationToken cancellationToken)
        {
            Assert.Equal("cc.example", host);
            Interlocked.Increment(ref lookups);
            return failure is null ? Task.FromResult(answer) : Task.FromException<IPAddress[]>(failure);
        }

        using var own = new OwnTraffic(new Uri("https://cc.example:7443"), enabled: true, TimeSpan.FromMinutes(5), time, NullLogger<OwnTraffic>.Instance, Resolve);
        var restarts = 0;
        own.Changed = _ =>
        {
            restarts++;
            return Task.CompletedTask;
        };
        Assert.Null(own.Expression);
        Assert.Equal("ip6", own.Apply("ip6")); // nothing known yet: nothing taken out

        Assert.True(await own.RefreshAsync(CancellationToken.None));
        Assert.Equal(OwnTrafficFilter.Compose("ip6", OwnTrafficFilter.Expression([A], 7443)), own.Apply("ip6"));
        Assert.False(await own.RefreshAsync(CancellationToken.None));
        Assert.Equal(1, restarts);

        answer = [B, A, A];
        Assert.True(await own.RefreshAsync(CancellationToken.None));
        Assert.Equal(OwnTrafficFilter.Expression([A, B], 7443), own.Expression);
        Assert.Equal(["2001:db8:5e::1", "2001:db8:5e::2"], own.Status()!.Addresses);

        // A failed or empty answer keeps what is known, and says why.
        failure = new SocketException((int)SocketError.HostNotFound);
        Assert.False(await own.RefreshAsync(CancellationToken.None));
        Assert.Equal(OwnTrafficFilter.Expression([A, B], 7443), own.Expression);
        Assert.NotNull(own.Status()!.Problem);
        failure = null;
        answer = [];
        Assert.False(await own.RefreshAsync(CancellationToken.None));
        Assert.Equal("no address", own.Status()!.Problem);
        Assert.Equal(2, restarts);

        // Periodically: the server moved.
        answer = [C];
        using var stop = new CancellationTokenSource();
        var running = own.RunAsync(stop.Token);
        var before = lookups;
        await ProbeHarness.WaitUntilAsync(() =>
        {
            time.Advance(TimeSpan.FromMinutes(5));
            return Volatile.Read(ref restarts) == 3;
        }, TimeSpan.FromSeconds(10), "the periodic resolution to find the new address");
        Assert.True(lookups > before);
        Assert.Equal(OwnTrafficFilter.Expression([C], 7443), own.Expression);
        Assert.Null(own.Status()!.Problem);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
    }

    [Fact]
    public async Task An_address_literal_needs_no_lookup_and_a_probe_without_a_server_or_with_the_setting_off_takes_nothing_out()
    {
        static Task<IPAddress[]> NoLookups(string host, CancellationToken cancellationToken) => throw new InvalidOperationException("looked up " + host);
        var time = TimeProvider.System;
        using (var literal = new OwnTraffic(new Uri("https://[2001:db8:5e::1]:17943"), true, TimeSpan.FromMinutes(5), time, NullLogger<OwnTraffic>.Instance, NoLookups))
        {
            Assert.Equal(OwnTrafficFilter.Expression([A], 17943), literal.Expression);
            Assert.False(await literal.RefreshAsync(CancellationToken.None));
            Assert.Equal((true, "2001:db8:5e::1", 17943), (literal.Status()!.LeftOut, literal.Status()!.Host, literal.Status()!.Port));
        }

        using (var unjoined = new OwnTraffic(null, true, TimeSpan.FromMinutes(5), time, NullLogger<OwnTraffic>.Instance, NoLookups))
        {
            Assert.False(unjoined.Active);
            Assert.Null(unjoined.Status());
            Assert.Equal("ip6", unjoined.Apply("ip6"));
        }

        using var off = new OwnTraffic(new Uri("https://192.0.2.7:17943"), false, TimeSpan.FromMinutes(5), time, NullLogger<OwnTraffic>.Instance, NoLookups);
        Assert.Equal("ip6", off.Apply("ip6"));
        Assert.False(await off.RefreshAsync(CancellationToken.None));
        Assert.False(off.Status()!.LeftOut);
    }

    [Fact]
    public async Task A_host_with_very_many_addresses_has_the_first_sixteen_left_out()
    {
        var many = Enumerable.Range(1, 40).Select(i => IPAddress.Parse(string.Create(CultureInfo.InvariantCulture, $"2001:db8:5e::{i:x}"))).ToArray();
        using var own = new OwnTraffic(new Uri("https://cc.example"), true, TimeSpan.FromMinutes(5), TimeProvider.System, NullLogger<OwnTraffic>.Instance, (_, _) => Task.FromResult(many));
        Assert.True(await own.RefreshAsync(CancellationToken.None));
        Assert.Equal(OwnTraffic.MaxAddresses, own.Status()!.Addresses.Count);
        Assert.Equal(443, own.Status()!.Port);
        using var program = SharpPcap.LibPcap.BpfProgram.TryCreate(PacketDotNet.LinkLayers.Ethernet, own.Apply(CaptureOptions.DefaultFilter));
        Assert.NotNull(program);
    }

    /// <summary>
    /// A joined probe (probe.json names its C&amp;C at the host end of a veth) with a local filter that takes TCP: its
    /// connections to the C&amp;C's port are left out, those to another port of the same host are not; then a server's
    /// policy replaces the filter and the C&amp;C stays left out; then, with the setting off, it is captured.
    /// </summary>
    [Fact]
    public async Task The_cc_endpoint_is_taken_out_of_a_local_filter_and_of_a_policy_and_status_idb_and_manifest_show_it()
    {
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        await using var server = new TcpSink(IPAddress.Parse(lab.HostAddress));
        await using var other = new TcpSink(IPAddress.Parse(lab.HostAddress));
        WriteJoin(state.Path, $"https://[{lab.HostAddress}]:{server.Port}");
        var own = OwnTrafficFilter.Expression([IPAddress.Parse(lab.HostAddress)], server.Port);
        var settings = ProbeHarness.Settings(state.Path, lab.HostInterface, ("Probe:Capture:Filter", "tcp or icmp6"));

        await using (var probe = await ProbeHarness.StartAsync(settings))
        {
            probe.RequireCapturing();
            var status = probe.Daemon.GetStatus();
            var applied = OwnTrafficFilter.Compose("tcp or icmp6", own);
            Assert.Equal(applied, status.Filter);
            Assert.Equal("tcp or icmp6", status.Policy!.Filter);
            var host = IPAddress.Parse(lab.HostAddress).ToString();
            Assert.Equal((true, host, server.Port), (status.OwnTraffic!.LeftOut, status.OwnTraffic.Host, status.OwnTraffic.Port));
            Assert.Equal([host], status.OwnTraffic.Addresses);

            var files = await ConnectAndReadAsync(probe, lab, lab.HostAddress, server, other);
            Assert.All(files, f => Assert.Equal([applied], f.Filters));
            Assert.All(files, f => Assert.Equal(applied, f.Manifest.GetProperty("filter").GetString()));
            Assert.All(files, f => Assert.Equal(applied, f.Manifest.GetProperty("interfaces")[0].GetProperty("filter").GetString()));

            // The server's policy: TCP only. The C&C is taken out of it too.
            var (ok, message) = await probe.Policies.ApplyAsync(new Policy { Version = 2, CaptureFilter = "tcp" }, probe.Daemon, CancellationToken.None);
            Assert.True(ok, message);
            applied = OwnTrafficFilter.Compose("tcp", own);
            status = probe.Daemon.GetStatus();
            Assert.Equal((applied, "tcp", 2L), (status.Filter, status.Policy!.Filter, status.Policy.Version));
            files = await ConnectAndReadAsync(probe, lab, lab.HostAddress, server, other);
            Assert.All(files, f => Assert.Equal([applied], f.Filters));
        }

        // The setting off: the policy's filter is applied as it is, and the C&C's traffic is in the files.
        settings["Probe:Capture:ExcludeOwnTraffic"] = "false";
        await using (var probe = await ProbeHarness.StartAsync(settings))
        {
            probe.RequireCapturing();
            var status = probe.Daemon.GetStatus();
            Assert.Equal(("tcp", false), (status.Filter, status.OwnTraffic!.LeftOut));
            var files = await ConnectAndReadAsync(probe, lab, lab.HostAddress, server, other, ownExpected: true);
            Assert.All(files, f => Assert.Equal(["tcp"], f.Filters));
        }
    }

    /// <summary>A C&amp;C reached over IPv4: its TCP is left out of a filter that takes IPv4 too.</summary>
    [Fact]
    public async Task An_ipv4_cc_endpoint_is_left_out_in_both_directions()
    {
        using var lab = new NetworkLab(ipv4: true);
        using var state = new TempDirectory();
        await using var server = new TcpSink(IPAddress.Parse(lab.HostIPv4!));
        await using var other = new TcpSink(IPAddress.Parse(lab.HostIPv4!));
        WriteJoin(state.Path, $"https://{lab.HostIPv4}:{server.Port}");
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface, ("Probe:Capture:Filter", "tcp")));
        probe.RequireCapturing();
        Assert.Equal(OwnTrafficFilter.Compose("tcp", OwnTrafficFilter.Expression([IPAddress.Parse(lab.HostIPv4!)], server.Port)), probe.Daemon.GetStatus().Filter);
        await ConnectAndReadAsync(probe, lab, lab.HostIPv4!, server, other);
    }

    /// <summary>
    /// Three connections to the C&amp;C's port, then three to the other port, from the namespace; waits until the other
    /// port's three SYNs are in closed files, then checks that the C&amp;C's are there (or not) in both directions.
    /// </summary>
    private static async Task<List<SpoolCapture>> ConnectAndReadAsync(ProbeHarness probe, NetworkLab lab, string address, TcpSink server, TcpSink other, bool ownExpected = false)
    {
        var before = SpoolContents.Read(probe.Spool.Root).Select(f => f.Path).ToHashSet(StringComparer.Ordinal);
        lab.Send("tcp", address, server.Port.ToString(CultureInfo.InvariantCulture), "3", "100");
        lab.Send("tcp", address, other.Port.ToString(CultureInfo.InvariantCulture), "3", "100");
        List<SpoolCapture> files = [];
        bool Syn(FrameInfo f, TcpSink sink) => f.NextHeader == 6 && f.DestinationPort == sink.Port && (f.TcpFlags & 0x12) == 0x02 && Equals(f.Destination, IPAddress.Parse(address));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            // Closed files only: the open one is rotated so that what was captured so far can be read.
            await probe.Daemon.RotateAsync(CancellationToken.None);
            files = [.. SpoolContents.Read(probe.Spool.Root).Where(f => !before.Contains(f.Path))];
            if (files.SelectMany(f => f.Frames).Count(f => Syn(f, other)) >= 3)
                break;
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the other port's connections in the spool");
            await Task.Delay(200);
        }

        var frames = files.SelectMany(f => f.Frames).ToList();
        Assert.Equal(3, frames.Count(f => Syn(f, other)));
        var toServer = frames.Count(f => f.NextHeader == 6 && f.DestinationPort == server.Port && Equals(f.Destination, IPAddress.Parse(address)));
        var fromServer = frames.Count(f => f.NextHeader == 6 && f.SourcePort == server.Port && Equals(f.Source, IPAddress.Parse(address)));
        if (ownExpected)
        {
            Assert.Equal(3, frames.Count(f => Syn(f, server)));
            Assert.True(fromServer >= 3, $"{fromServer} segments from the C&C's port captured");
        }
        else
        {
            Assert.Equal((0, 0), (toServer, fromServer));
        }

        return files;
    }

    /// <summary>The probe.json of a joined probe, as far as the capture reads it.</summary>
    private static void WriteJoin(string stateDirectory, string server)
    {
        Directory.CreateDirectory(stateDirectory);
        File.WriteAllText(Path.Combine(stateDirectory, "probe.json"), new JsonObject { ["probe_id"] = "p-own", ["server"] = server }.ToJsonString());
    }

    /// <summary>A TCP port on the host end of the lab that accepts connections, reads them to their end and closes them.</summary>
    private sealed class TcpSink : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accepting;

        public TcpSink(IPAddress address)
        {
            _listener = new TcpListener(address, 0);
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _accepting = AcceptAsync();
        }

        public int Port { get; }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _accepting;
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                try
                {
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    while (await stream.ReadAsync(buffer, _stop.Token) > 0)
                    {
                    }
                }
                catch (IOException)
                {
                    // A connection that broke is no reason to stop taking the next.
                }
            }
        }
    }
}

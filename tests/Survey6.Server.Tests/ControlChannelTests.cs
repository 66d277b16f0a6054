using Microsoft.Extensions.DependencyInjection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Survey6.Contracts.V1;
using Survey6.Probe.Control;
using Survey6.Probe.Join;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>The probe's ControlChannel against a real server, with a probe joined through the real join path.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ControlChannelTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    // The real channel stamps heartbeats with the real clock, so the server here runs on the real clock too and the
    // skew it measures must be near zero (the harness's standing clock would read a slow machine's delay as skew).
    public async Task InitializeAsync() =>
        _server = await ServerHarness.StartAsync(services: services => services.AddSingleton(TimeProvider.System));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Heartbeats_commands_results_reconnection_and_refusal()
    {
        var stateDirectory = Path.Combine(_server.Root, "probe");
        var joined = await ProbeJoinClient.JoinAsync(new JoinSettings(
            _server.GrpcUrl, _server.CreateToken(), _server.Pki.Authority.Pin, stateDirectory, new Dictionary<string, string>(), null));
        var disconnects = new List<Exception>();
        var options = ControlChannelOptions.FromStateDirectory(stateDirectory) with
        {
            InitialBackoff = TimeSpan.FromMilliseconds(50),
            Disconnected = (e, _) =>
            {
                lock (disconnects)
                    disconnects.Add(e);
            },
        };
        Assert.Equal(TimeSpan.FromSeconds(10), options.HeartbeatInterval); // from the join's initial policy
        var snapshot = new Heartbeat
        {
            State = ProbeState.Capturing,
            Capture = new CaptureCounters { Received = 10 },
            Spool = new SpoolStatus { FreeDiskBytes = 10UL << 30, OldestAge = Duration.FromTimeSpan(TimeSpan.FromMinutes(1)) },
            SoftwareVersion = "channel-test",
        };

        using var channel = new ControlChannel(options, _ => ValueTask.FromResult(snapshot));
        using var stop = new CancellationTokenSource();
        var running = channel.RunAsync(stop.Token);
        var health = _server.Get<ProbeHealthQuery>();
        var commands = _server.Get<ProbeCommands>();
        await ProbeChanges.EventuallyAsync(async () => (await health.GetAsync(joined.ProbeId))!.State == ProbeStates.Healthy, "first heartbeat");
        var seen = (await health.GetAsync(joined.ProbeId))!;
        Assert.Equal("channel-test", seen.SoftwareVersion);
        Assert.Equal(TimeSpan.FromSeconds(10), seen.HeartbeatInterval);
        Assert.True(channel.IsConnected);
        Assert.True(seen.ClockSkew is { } skew && skew.Duration() < TimeSpan.FromSeconds(2), $"skew {seen.ClockSkew}");

        await using var received = channel.ReadCommandsAsync().GetAsyncEnumerator();
        var upload = commands.UploadNow(joined.ProbeId);
        Assert.True(await received.MoveNextAsync().AsTask().WaitAsync(ProbeStream.Wait));
        Assert.Equal(upload.Id, received.Current.Id);

        // The stream breaks before the daemon answers: the channel reconnects, the server sends the
        // command again, and the channel does not hand it out a second time.
        _server.Get<ProbeConnections>().Close(joined.ProbeId, new Status(StatusCode.Unavailable, "test break"));
        await ProbeChanges.EventuallyAsync(() => commands.Get(upload.Id)!.DeliveredAt is not null && disconnects.Count == 1 && channel.IsConnected, "reconnected");
        await ProbeChanges.EventuallyAsync(() => _server.Counters.Get(ControlCounters.CommandsSent) >= 2, "command sent again");
        Assert.IsType<RpcException>(disconnects[0]);

        channel.ReportResult(upload.Id, ok: true, "uploaded 3 files");
        await ProbeChanges.EventuallyAsync(() => commands.Get(upload.Id)!.Status == "ok", "result recorded");
        Assert.Equal("uploaded 3 files", commands.Get(upload.Id)!.ResultMessage);

        var resume = commands.Resume(joined.ProbeId);
        var next = received.MoveNextAsync().AsTask();
        Assert.True(await next.WaitAsync(ProbeStream.Wait));
        Assert.Equal(resume.Id, received.Current.Id); // not the repeated upload-now

        _server.Get<ProbeRevoker>().Revoke(joined.ProbeId, "test", "test");
        var refused = await Assert.ThrowsAsync<ControlChannelRefusedException>(() => running.WaitAsync(ProbeStream.Wait));
        Assert.Contains("revoked", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 500, 1000)]
    [InlineData(1, 1000, 2000)]
    [InlineData(3, 4000, 8000)]
    [InlineData(20, 150_000, 300_000)]
    [InlineData(int.MaxValue, 150_000, 300_000)]
    public void Backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half(int attempt, int lowMs, int highMs)
    {
        var random = new Random(42);
        var delays = Enumerable.Range(0, 200)
            .Select(_ => ControlChannel.BackoffDelay(attempt, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), random).TotalMilliseconds)
            .ToList();
        Assert.All(delays, d => Assert.InRange(d, lowMs, highMs));
        Assert.True(delays.Distinct().Count() > 100, "jittered");
    }
}

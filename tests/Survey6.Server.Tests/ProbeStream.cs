using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Survey6.Contracts.V1;
using Survey6.Server.Control;
using ControlClient = Survey6.Contracts.V1.Control.ControlClient;

namespace Survey6.Server.Tests;

/// <summary>A probe's control stream driven by hand: heartbeats with chosen contents, commands as they arrive.</summary>
internal sealed class ProbeStream : IAsyncDisposable
{
    /// <summary>How long to wait for something that must happen; generous, since a loaded 2-core machine can stall a process for seconds.</summary>
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly GrpcChannel _channel;
    private readonly AsyncDuplexStreamingCall<ProbeMessage, ServerMessage> _call;
    private readonly Channel<HeartbeatAck> _acks = Channel.CreateUnbounded<HeartbeatAck>();
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>();
    private ulong _sequence;

    private ProbeStream(GrpcChannel channel)
    {
        _channel = channel;
        _call = new ControlClient(channel).Connect();
        Ended = ReadAsync();
    }

    /// <summary>Completes when the server ends the stream: null for an OK end, else its status.</summary>
    public Task<RpcException?> Ended { get; }

    public static ProbeStream Open(ServerHarness server, X509Certificate2 certificate) => new(server.Channel(certificate));

    /// <summary>A heartbeat of a healthy probe at the server's current (fake) time.</summary>
    public static Heartbeat Healthy(ServerHarness server, ulong received = 1000) => new()
    {
        State = ProbeState.Capturing,
        Capture = new CaptureCounters { Received = received },
        Spool = new SpoolStatus { Files = 1, Bytes = 1 << 20, OldestAge = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)), FreeDiskBytes = 100UL << 30 },
        Upload = new UploadCounters(),
        CpuPercent = 3.5,
        RssBytes = 80 << 20,
        SoftwareVersion = "0.1.0-test",
        PolicyVersion = 1,
        ProbeClock = Timestamp.FromDateTimeOffset(server.Time.GetUtcNow()),
        HeartbeatInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)),
    };

    public async Task<HeartbeatAck> HeartbeatAsync(Heartbeat heartbeat)
    {
        heartbeat.Sequence = ++_sequence;
        await _call.RequestStream.WriteAsync(new ProbeMessage { Heartbeat = heartbeat });
        using var timeout = new CancellationTokenSource(Wait);
        var ack = await _acks.Reader.ReadAsync(timeout.Token);
        Assert.Equal(heartbeat.Sequence, ack.Sequence);
        return ack;
    }

    public async Task<Command> NextCommandAsync(TimeSpan? within = null)
    {
        using var timeout = new CancellationTokenSource(within ?? Wait);
        return await _commands.Reader.ReadAsync(timeout.Token);
    }

    public bool HasCommand => _commands.Reader.TryPeek(out _);

    public Task AnswerAsync(string commandId, bool ok = true, string message = "done") =>
        _call.RequestStream.WriteAsync(new ProbeMessage { CommandResult = new CommandResult { CommandId = commandId, Ok = ok, Message = message } });

    private async Task<RpcException?> ReadAsync()
    {
        try
        {
            await foreach (var message in _call.ResponseStream.ReadAllAsync())
            {
                if (message.HeartbeatAck is { } ack)
                    _acks.Writer.TryWrite(ack);
                else if (message.Command is { } command)
                    _commands.Writer.TryWrite(command);
            }

            return null;
        }
        catch (RpcException e)
        {
            return e;
        }
        finally
        {
            _acks.Writer.TryComplete();
            _commands.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _call.Dispose();
        await Ended.WaitAsync(Wait);
        _channel.Dispose();
    }
}

internal static class ProbeChanges
{
    /// <summary>The first change matching <paramref name="match"/>, waiting at most a few seconds of real time.</summary>
    public static async Task<ProbeChange> WaitForAsync(this ProbeChangeSubscription subscription, Func<ProbeChange, bool> match)
    {
        using var timeout = new CancellationTokenSource(ProbeStream.Wait);
        await foreach (var change in subscription.Changes.ReadAllAsync(timeout.Token))
        {
            if (match(change))
                return change;
        }

        throw new InvalidOperationException("subscription ended");
    }

    /// <summary>Polls <paramref name="condition"/> until it holds, for state written by another thread.</summary>
    public static Task EventuallyAsync(Func<bool> condition, string what) => EventuallyAsync(() => Task.FromResult(condition()), what);

    /// <summary>Polls <paramref name="condition"/>, which awaits (a health query, say), until it holds.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + ProbeStream.Wait;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("never happened: " + what);
            await Task.Delay(20);
        }
    }
}

using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Security;
using ControlContract = Survey6.Contracts.V1.Control;

namespace Survey6.Server.Control;

/// <summary>
/// survey6.v1.Control.Connect: one long-lived stream per probe. Heartbeats are recorded on the
/// server's clock and acknowledged; commands not yet answered are sent when the stream opens and
/// whenever new ones are issued; results are recorded against the probe the certificate names.
/// </summary>
internal sealed class ControlService(
    ProbeConnections connections,
    HeartbeatRecorder recorder,
    ProbeCommands commands,
    ProbeNotifier notifier,
    ServerCounters counters,
    TimeProvider time,
    IOptions<ControlOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<ControlService> logger) : ControlContract.ControlBase
{
    internal static readonly Status Revoked = new(StatusCode.PermissionDenied, "probe revoked");
    internal static readonly Status Stopping = new(StatusCode.Unavailable, "the server is stopping; reconnect");

    public override async Task Connect(IAsyncStreamReader<ProbeMessage> requestStream, IServerStreamWriter<ServerMessage> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        // The only source of the probe id: nothing in a message names a probe.
        var probeId = context.GetProbeIdentity().ProbeId;
        using var connection = connections.Register(probeId, context.RemoteAddress(), time.GetUtcNow());
        counters.Increment(ControlCounters.Connections);
        ControlLog.Connected(logger, probeId, connection.Remote);
        notifier.Publish(new ProbeChange(ProbeChangeKind.Connected, probeId, connection.Since));

        // Streams never end on their own: without this, a stopping server would wait out its whole shutdown timeout for them.
        using var stopping = lifetime.ApplicationStopping.Register(static c => ((ProbeConnection)c!).Close(Stopping), connection);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, connection.Closing);
        using var writeLock = new SemaphoreSlim(1, 1);
        var sender = SendCommandsAsync(connection, responseStream, writeLock, stop.Token);
        long lastRecorded = 0;
        TimeSpan? lastSkew = null;
        try
        {
            while (await requestStream.MoveNext(stop.Token).ConfigureAwait(false))
            {
                var message = requestStream.Current;
                if (message.KindCase == ProbeMessage.KindOneofCase.Heartbeat)
                {
                    var received = time.GetUtcNow();
                    if (lastRecorded != 0 && time.GetElapsedTime(lastRecorded) < options.Value.MinHeartbeatSpacing)
                    {
                        counters.Increment(ControlCounters.HeartbeatsThrottled);
                    }
                    else
                    {
                        lastRecorded = time.GetTimestamp();
                        var outcome = recorder.RecordHeartbeat(probeId, message.Heartbeat, received);
                        if (outcome.Revoked)
                        {
                            connection.Close(Revoked);
                            continue; // the next MoveNext sees the cancellation
                        }

                        lastSkew = outcome.ClockSkew;
                    }

                    var ack = new HeartbeatAck
                    {
                        ServerTime = Timestamp.FromDateTimeOffset(received),
                        Sequence = message.Heartbeat.Sequence,
                        ClockSkew = lastSkew is { } skew ? Duration.FromTimeSpan(skew) : null,
                    };
                    await WriteAsync(responseStream, writeLock, new ServerMessage { HeartbeatAck = ack }, stop.Token).ConfigureAwait(false);
                }
                else if (message.KindCase == ProbeMessage.KindOneofCase.CommandResult)
                {
                    RecordResult(probeId, message.CommandResult);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException
                                  && (connection.CloseStatus is not null || context.CancellationToken.IsCancellationRequested))
        {
            // closed by the server (status thrown below) or the probe went away
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await sender.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
            {
                // writes fail once the stream is gone; unsent commands stay pending for the next stream
            }

            connections.Unregister(connection);
            notifier.Publish(new ProbeChange(ProbeChangeKind.Disconnected, probeId, time.GetUtcNow()));
        }

        if (connection.CloseStatus is { } status)
        {
            counters.Increment(ControlCounters.StreamsClosed);
            ControlLog.StreamClosed(logger, probeId, status.Detail);
            throw new RpcException(status);
        }

        ControlLog.Disconnected(logger, probeId);
    }

    private async Task SendCommandsAsync(ProbeConnection connection, IServerStreamWriter<ServerMessage> stream, SemaphoreSlim writeLock, CancellationToken cancellationToken)
    {
        await Task.Yield(); // let Connect start reading
        long sentUpTo = 0;
        try
        {
            while (true)
            {
                foreach (var command in commands.Unanswered(connection.ProbeId, sentUpTo))
                {
                    await WriteAsync(stream, writeLock, new ServerMessage { Command = command.ToMessage() }, cancellationToken).ConfigureAwait(false);
                    commands.MarkDelivered(command.Id);
                    sentUpTo = command.Seq;
                    counters.Increment(ControlCounters.CommandsSent);
                    ControlLog.CommandSent(logger, ProbeCommands.KindName(command.Kind), command.Id, connection.ProbeId);
                    notifier.Publish(new ProbeChange(ProbeChangeKind.CommandDelivered, connection.ProbeId, time.GetUtcNow())
                    {
                        CommandId = command.Id,
                        CommandKind = command.Kind,
                    });
                }

                await connection.WaitForWakeAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is not (OperationCanceledException or IOException or InvalidOperationException))
        {
            // A stream that cannot deliver commands must not look healthy: make the probe reconnect and start over.
            ControlLog.DeliveryFailed(logger, connection.ProbeId, e);
            connection.Close(new Status(StatusCode.Unavailable, "the server could not deliver commands; reconnect"));
        }
    }

    private void RecordResult(string probeId, CommandResult result)
    {
        if (result.CommandId.Length is 0 or > 64 || !commands.RecordResult(probeId, result.CommandId, result.Ok, result.Message, out var kind))
        {
            counters.Increment(ControlCounters.ResultsIgnored);
            return;
        }

        var name = ProbeCommands.KindName(kind);
        if (result.Ok)
        {
            counters.Increment(ControlCounters.CommandsSucceeded);
            ControlLog.CommandSucceeded(logger, probeId, name, result.CommandId, result.Message);
        }
        else
        {
            counters.Increment(ControlCounters.CommandsFailed);
            ControlLog.CommandFailed(logger, probeId, name, result.CommandId, result.Message);
        }

        notifier.Publish(new ProbeChange(ProbeChangeKind.CommandCompleted, probeId, time.GetUtcNow())
        {
            CommandId = result.CommandId,
            CommandKind = kind,
            Ok = result.Ok,
        });
    }

    // One writer at a time: acks come from the reading loop, commands from the sender.
    private static async Task WriteAsync(IServerStreamWriter<ServerMessage> stream, SemaphoreSlim writeLock, ServerMessage message, CancellationToken cancellationToken)
    {
        await writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await stream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            writeLock.Release();
        }
    }
}

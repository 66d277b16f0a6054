using System.Globalization;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Control;

/// <summary>
/// The control slice's background work, on the injected <see cref="TimeProvider"/>:
/// <list type="bullet">
/// <item>every <see cref="HealthOptions.EvaluationInterval"/>, re-evaluates every probe, so silent
/// ones turn offline and then inactive with no message arriving (old rollups are the
/// housekeeping sweep's);</item>
/// <item>every <see cref="ControlOptions.ExternalChangePollInterval"/>, reads the event rows other
/// processes wrote (commands issued and revocations from the CLI) and publishes them, which wakes
/// or closes the probe's stream.</item>
/// <item>re-evaluates a probe an operator suspended or resumed, off the thread that issued the command.</item>
/// </list>
/// Every evaluation first awaits the <see cref="HeartbeatWriter"/>, so it sees every acknowledged
/// heartbeat. It also wires the in-process reactions to published changes.
/// </summary>
internal sealed class ControlBackgroundService(
    HeartbeatWriter writer,
    ProbeHealthEvaluator evaluator,
    ProbeConnections connections,
    ProbeNotifier notifier,
    ProbeRevocations revocations,
    StateDatabase database,
    TimeProvider time,
    IOptions<HealthOptions> health,
    IOptions<ControlOptions> control,
    ILogger<ControlBackgroundService> logger) : BackgroundService
{
    private static readonly string[] WatchedKinds = [EventKinds.CommandIssued, EventKinds.ProbeRevoked, EventKinds.ProbeLeft];
    private long _lastEventId;
    // Probes to re-evaluate after a suspend or resume; React runs on the issuer's thread and must not wait for the writer.
    private readonly Channel<string> _reevaluate = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        notifier.Reaction = React;
        _lastEventId = LastEventId();
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.WhenAll(EvaluateLoopAsync(stoppingToken), PollLoopAsync(stoppingToken), ReevaluateLoopAsync(stoppingToken)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void React(ProbeChange change)
    {
        if (change.Kind == ProbeChangeKind.CommandIssued)
        {
            connections.Wake(change.ProbeId);
            if (change.CommandKind is ProbeCommandKind.Suspend or ProbeCommandKind.Resume or null)
                _reevaluate.Writer.TryWrite(change.ProbeId);
        }
        else if (change.Kind == ProbeChangeKind.StateChanged && change.State == ProbeStates.Revoked)
        {
            revocations.ProbeRevoked(change.ProbeId);
            connections.Close(change.ProbeId, ControlService.Revoked);
        }
    }

    private async Task EvaluateLoopAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        await ClockTicker.RunAsync(time, health.Value.EvaluationInterval, async ct =>
        {
            try
            {
                await writer.WaitUntilStoredAsync(ct).ConfigureAwait(false);
                evaluator.EvaluateAll();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ControlLog.EvaluationFailed(logger, e);
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task ReevaluateLoopAsync(CancellationToken cancellationToken)
    {
        await foreach (var probeId in _reevaluate.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                await writer.WaitUntilStoredAsync(cancellationToken).ConfigureAwait(false);
                evaluator.Reevaluate(probeId);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The command is stored; the next evaluation round catches up. The issuer never sees this as a failure.
                ControlLog.EvaluationFailed(logger, e);
            }
        }
    }

    private async Task PollLoopAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        await ClockTicker.RunAsync(time, control.Value.ExternalChangePollInterval, () =>
        {
            try
            {
                PollExternalChanges();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ControlLog.PollFailed(logger, e);
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Publishes command and revocation events written since the last look, except those this process published itself.</summary>
    internal void PollExternalChanges()
    {
        var found = new List<(long Id, string Kind, string ProbeId, string Detail, DateTimeOffset At)>();
        using (var connection = database.Open())
        using (var command = connection.CreateCommand())
        {
            command.CommandText = """
                SELECT id, kind, probe_id, detail, at FROM events
                WHERE id > $last AND kind IN ($k0, $k1, $k2) AND probe_id IS NOT NULL ORDER BY id LIMIT 1000
                """;
            command.Parameters.AddWithValue("$last", _lastEventId);
            for (int i = 0; i < WatchedKinds.Length; i++)
                command.Parameters.AddWithValue("$k" + i.ToString(CultureInfo.InvariantCulture), WatchedKinds[i]);
            using var reader = command.ExecuteReader();
            while (reader.Read())
                found.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), DbTime.Parse(reader.GetString(4))));
        }

        foreach (var (id, kind, probeId, detail, at) in found)
        {
            _lastEventId = id;
            if (notifier.TakeClaim(id))
                continue;
            if (kind == EventKinds.CommandIssued)
            {
                // detail: "KIND ID[ (by WHO)]", as ProbeCommands writes it
                var words = detail.Split(' ');
                ProbeCommandKind? commandKind = null;
                try
                {
                    commandKind = ProbeCommands.ParseKind(words[0]);
                }
                catch (FormatException)
                {
                }

                notifier.Publish(new ProbeChange(ProbeChangeKind.CommandIssued, probeId, at)
                {
                    CommandId = words.Length > 1 ? words[1] : null,
                    CommandKind = commandKind,
                    EventId = id,
                });
            }
            else
            {
                notifier.Publish(new ProbeChange(ProbeChangeKind.StateChanged, probeId, at)
                {
                    State = ProbeStates.Revoked,
                    Reasons = [new HealthReason(HealthReasonCodes.Revoked, detail.Length > 0 ? detail : "revoked")],
                    EventId = id,
                });
            }
        }

        if (found.Count > 0)
            notifier.ForgetClaimsUpTo(_lastEventId);
    }

    private long LastEventId()
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(MAX(id), 0) FROM events";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}

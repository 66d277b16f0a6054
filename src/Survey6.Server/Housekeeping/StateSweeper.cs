using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Server.Control;
using Survey6.Server.Storage;

namespace Survey6.Server.Housekeeping;

/// <summary>What one sweep deleted.</summary>
public readonly record struct SweepResult(int Tokens, int Commands, int HeartbeatMinutes);

/// <summary>
/// The one retention sweep of state.db: finished join tokens and old command history after their
/// retention (<see cref="HousekeepingOptions"/>), and per-minute heartbeat rollups after
/// <see cref="HealthOptions.HistoryRetention"/>; at start and every
/// <see cref="HousekeepingOptions.SweepInterval"/> on the injected clock.
/// </summary>
public sealed partial class StateSweeper(
    StateDatabase database,
    TimeProvider time,
    IOptions<HousekeepingOptions> options,
    IOptions<HealthOptions> health,
    ILogger<StateSweeper> logger) : BackgroundService
{
    /// <summary>One sweep now; each table in its own statement, so a long sweep never holds the write lock for all.</summary>
    public SweepResult Sweep()
    {
        var now = time.GetUtcNow();
        var settings = options.Value;
        using var connection = database.Open();
        int tokens;
        using (var command = connection.CreateCommand())
        {
            // A used-up token stopped being usable at the last join made with it.
            command.CommandText = """
                DELETE FROM tokens WHERE MIN(
                    COALESCE(revoked_at, '9999'),
                    CASE WHEN expires_at IS NOT NULL AND expires_at <= $now THEN expires_at ELSE '9999' END,
                    CASE WHEN used >= max_uses THEN COALESCE((SELECT MAX(p.joined_at) FROM probes p WHERE p.token_id = tokens.id), created_at) ELSE '9999' END
                ) < $cutoff
                """;
            command.Parameters.AddWithValue("$now", DbTime.ToText(now));
            command.Parameters.AddWithValue("$cutoff", DbTime.ToText(now - settings.TokenRetention));
            tokens = command.ExecuteNonQuery();
        }

        int commands;
        using (var command = connection.CreateCommand())
        {
            command.CommandText = """
                DELETE FROM commands WHERE (result_at IS NOT NULL AND result_at < $cutoff)
                    OR (result_at IS NULL AND issued_at < $cutoff AND probe_id IN (SELECT id FROM probes WHERE state = 'revoked'))
                """;
            command.Parameters.AddWithValue("$cutoff", DbTime.ToText(now - settings.CommandRetention));
            commands = command.ExecuteNonQuery();
        }

        var minutes = StatusRows.DeleteMinutesBefore(connection, now - health.Value.HistoryRetention);
        if (tokens + commands + minutes > 0)
            Swept(logger, tokens, commands, minutes);
        return new SweepResult(tokens, commands, minutes);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            await ClockTicker.RunAsync(time, options.Value.SweepInterval, () =>
            {
                try
                {
                    Sweep();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    SweepFailed(logger, e);
                }
            }, stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(400, LogLevel.Information, "Housekeeping deleted {Tokens} finished join tokens, {Commands} old commands and {Minutes} old heartbeat rollups")]
    private static partial void Swept(ILogger logger, int tokens, int commands, int minutes);

    [LoggerMessage(401, LogLevel.Error, "Housekeeping of state.db failed; retrying at the next interval")]
    private static partial void SweepFailed(ILogger logger, Exception exception);
}

using Microsoft.Extensions.Diagnostics.HealthChecks;
using Survey6.Server.Storage;

namespace Survey6.Server.Metrics;

/// <summary>Serving means state.db answers: every probe call needs it (certificates are checked against it).</summary>
internal sealed class StateDatabaseHealthCheck(StateDatabase database) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var connection = database.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT MAX(version) FROM schema_version";
            command.ExecuteScalar();
            return Task.FromResult(HealthCheckResult.Healthy());
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or IOException or InvalidOperationException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("state.db does not answer", e));
        }
    }
}

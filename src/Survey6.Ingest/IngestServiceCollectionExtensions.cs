using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Survey6.Ingest;

public static class IngestServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="IIngestQueue"/> as a singleton chosen by <c>Ingest:Kind</c>
    /// (<c>sqlite</c> or <c>redis</c>), binds <see cref="IngestOptions"/> from the <c>Ingest</c>
    /// section and validates it when the host starts.
    /// </summary>
    public static IServiceCollection AddSurvey6IngestQueue(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<IngestOptions>()
            .Bind(configuration.GetSection(IngestOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IngestOptions>, IngestOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IIngestQueue>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<IngestOptions>>();
            var time = sp.GetRequiredService<TimeProvider>();
            var loggers = sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
            return options.Value.Kind switch
            {
                IngestQueueKind.Sqlite => new SqliteIngestQueue(options, time, loggers.CreateLogger<SqliteIngestQueue>()),
                IngestQueueKind.Redis => RedisStreamsIngestQueue.Connect(options, time, loggers.CreateLogger<RedisStreamsIngestQueue>()),
                _ => throw new InvalidOperationException($"Unknown Ingest:Kind {options.Value.Kind}."),
            };
        });
        return services;
    }
}

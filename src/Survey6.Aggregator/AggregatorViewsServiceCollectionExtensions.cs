using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Query;
using Survey6.Data.Views;

namespace Survey6.Aggregator;

public static class AggregatorViewsServiceCollectionExtensions
{
    /// <summary>
    /// What the C&amp;C's data page reads of the aggregator's work, for a program that hosts the server: the run ledger
    /// (<see cref="IPipelineViewSource"/>) and the lake (<see cref="IDatasetSummarySource"/>), at the places the
    /// server's <see cref="Survey6.Data.DataLayout"/> names. Read only: they need neither the aggregator's stages nor
    /// its options, so a server whose aggregator runs elsewhere (<c>server run --no-aggregator</c>) shows them too.
    /// </summary>
    public static IServiceCollection AddSurvey6AggregatorViews(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        // Aggregator:Ledger:ConnectionString in the server's configuration: the workers' ledger is in PostgreSQL.
        services.TryAddSingleton<IPipelineViewSource>(sp => new LedgerPipelineViewSource(
            sp.GetRequiredService<Survey6.Data.DataLayout>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<IConfiguration>()?[$"{AggregatorOptions.SectionName}:Ledger:{nameof(LedgerOptions.ConnectionString)}"]));
        services.TryAddSingleton<IDatasetSummarySource, LakeDatasetSummary>();
        return services;
    }
}

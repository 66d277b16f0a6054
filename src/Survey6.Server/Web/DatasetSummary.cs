namespace Survey6.Server.Web;

/// <summary>A short look at the datasets for the data page.</summary>
public sealed record DatasetSummary(
    IReadOnlyDictionary<string, long> RowsPerTable,
    IReadOnlyList<KeyValuePair<string, long>> TopPrefixes,
    IReadOnlyList<KeyValuePair<string, long>> IidClasses,
    IReadOnlyList<KeyValuePair<string, long>> TopDnsNames);

/// <summary>
/// Where the data page gets its dataset summary. The lake's query engine lives with the aggregator;
/// the program that hosts the server registers an implementation when it can read the lake. Without
/// one the page shows the row counts the aggregator's ledger records.
/// </summary>
public interface IDatasetSummarySource
{
    /// <summary>Null when there is no lake yet.</summary>
    ValueTask<DatasetSummary?> GetAsync(CancellationToken cancellationToken);
}

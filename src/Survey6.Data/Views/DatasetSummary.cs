namespace Survey6.Data.Views;

/// <summary>A short look at the datasets for the data page.</summary>
public sealed record DatasetSummary(
    IReadOnlyDictionary<string, long> RowsPerTable,
    IReadOnlyList<KeyValuePair<string, long>> TopPrefixes,
    IReadOnlyList<KeyValuePair<string, long>> IidClasses,
    IReadOnlyList<KeyValuePair<string, long>> TopDnsNames);

/// <summary>
/// Where the data page gets its dataset summary. The lake's query engine (DuckDB) lives with the aggregator, which
/// implements this; the program that hosts the server registers it. A server host without it shows the row counts
/// the aggregator's ledger records and says that it cannot read the lake.
/// </summary>
public interface IDatasetSummarySource
{
    /// <summary>The lake read (<see cref="DataLayout.Lake"/>).</summary>
    string LakeDirectory { get; }

    /// <summary>Null when there is no lake yet.</summary>
    ValueTask<DatasetSummary?> GetAsync(CancellationToken cancellationToken);
}

namespace Survey6.Aggregator.Anonymisation;

/// <summary>How outputs say which key anonymised them.</summary>
public static class AnonymisationMetadata
{
    /// <summary>Parquet key-value metadata key; absent in files whose addresses are not anonymised.</summary>
    public const string KeyIdKey = "survey6.anonymisation_key_id";
}

using System.Globalization;

namespace Survey6.Aggregator.Storage;

/// <summary>
/// Names in the lake. Datasets are Hive-partitioned: <c>LAKE/packets/date=D/probe=P/SHA.parquet</c>,
/// <c>LAKE/captures/date=D/probe=P/SHA.parquet</c>, <c>LAKE/&lt;aggregate&gt;/date=D/data.parquet</c> (<c>dns</c>: several
/// <see cref="PartFile"/>s on a date with many names), except for
/// the merge units below the date: <c>LAKE/flows/date=D/probe=P/DATE.UNIT.parquet</c> (one file per probe) and
/// <c>LAKE/connections/date=D/probe=P/HOUR.UNIT.parquet</c> (one per probe and hour).
/// Work in progress lives under names readers never match: hidden <c>.*.tmp</c> files beside their target, and
/// <c>LAKE/.staging/</c> for whole partitions; per-capture partial aggregates under <c>LAKE/.partials/</c>.
/// </summary>
public sealed class LakeLayout(string root)
{
    public const string DateFormat = "yyyy-MM-dd";
    public const string TempSuffix = ".tmp";
    public const string PartitionFile = "data.parquet";

    public const string Packets = "packets";
    public const string Captures = "captures";
    public const string Flows = "flows";
    public const string Addresses = "addresses";
    public const string Prefixes = "prefixes";
    public const string Dns = "dns";
    public const string Icmpv6 = "icmpv6";
    public const string Icmpv6Routers = "icmpv6_routers";
    public const string Summary = "summary";
    public const string Connections = "connections";

    /// <summary>Datasets the aggregate stage builds per date, in build order.</summary>
    public static readonly IReadOnlyList<string> AggregateDatasets = [Flows, Connections, Addresses, Prefixes, Dns, Icmpv6, Icmpv6Routers, Summary];

    /// <summary>Every dataset, as registered for queries.</summary>
    public static readonly IReadOnlyList<string> AllDatasets = [Packets, Captures, .. AggregateDatasets];

    public string Root { get; } = Path.GetFullPath(root);

    public string Staging => Path.Combine(Root, ".staging");

    /// <summary>
    /// Per-capture partial aggregates, <c>LAKE/.partials/date=D/probe=P/SHA.DEPS/*.parquet</c>: hidden from readers
    /// of the datasets, kept so that a run only aggregates new captures (docs/datasets.md, "Incremental design").
    /// </summary>
    public string Partials => Path.Combine(Root, ".partials");

    /// <summary>
    /// The connection fragments the parse stage tracked per capture, <c>LAKE/.connections/date=D/probe=P/SHA.SETTINGS.parquet</c>:
    /// hidden from readers, copied by the aggregate stage as the capture's connections partial.
    /// </summary>
    public string ParsedConnections => Path.Combine(Root, ".connections");

    public string PartialsPartition(DateOnly date) => Path.Combine(Partials, DatePart(date));

    /// <summary>
    /// The date's merged state, <c>LAKE/.partials/date=D/merged/</c>: the merge of every partial of the date for the
    /// datasets with distinct counts (dns, icmpv6), kept so that a run merges only the partials added since.
    /// </summary>
    public string MergedPartials(DateOnly date) => Path.Combine(PartialsPartition(date), "merged");

    public string Dataset(string name) => Path.Combine(Root, name);

    public static string DatePart(DateOnly date) => "date=" + date.ToString(DateFormat, CultureInfo.InvariantCulture);

    public string DatePartition(string dataset, DateOnly date) => Path.Combine(Dataset(dataset), DatePart(date));

    public static string ProbePart(string probeId) => "probe=" + probeId;

    /// <summary>Datasets whose date partitions hold a folder per probe (<c>date=D/probe=P/*.parquet</c>) rather than one file.</summary>
    public static bool HasProbeFolders(string dataset) => dataset is Packets or Captures or Flows or Connections;

    /// <summary>Every file of a dataset's date partition, as a glob for readers.</summary>
    public string PartitionGlob(string dataset, DateOnly date) =>
        Path.Combine(DatePartition(dataset, date), HasProbeFolders(dataset) ? Path.Combine("*", "*.parquet") : "*.parquet");

    /// <summary>
    /// The name of file <paramref name="part"/> (from 0) of <paramref name="parts"/> of a date partition written in
    /// several sorted files (<c>dns</c> on a date with more names than one sort holds): <c>data.parquet</c> when it is
    /// one, else <c>data.K-of-N.parquet</c> (K from 1).
    /// </summary>
    public static string PartFile(int part, int parts) => parts == 1
        ? PartitionFile
        : string.Create(CultureInfo.InvariantCulture, $"data.{part + 1:D3}-of-{parts:D3}.parquet");

    /// <summary>Whether a date partition of the dataset has been written (an empty folder counts for the per-probe ones).</summary>
    public bool HasPartition(string dataset, DateOnly date) => HasProbeFolders(dataset)
        ? Directory.Exists(DatePartition(dataset, date))
        : Directory.Exists(DatePartition(dataset, date)) && Directory.EnumerateFiles(DatePartition(dataset, date), "data*.parquet").Any();

    public string PerCaptureFile(string dataset, DateOnly date, string probeId, string sha256) =>
        Path.Combine(DatePartition(dataset, date), ProbePart(probeId), sha256 + ".parquet");

    /// <summary>Dates that have a packets partition, oldest first.</summary>
    public IReadOnlyList<DateOnly> PacketDates()
    {
        var folder = Dataset(Packets);
        if (!Directory.Exists(folder))
            return [];
        var dates = new List<DateOnly>();
        foreach (var dir in Directory.EnumerateDirectories(folder, "date=*"))
        {
            if (TryParseDatePart(Path.GetFileName(dir), out var date))
                dates.Add(date);
        }
        dates.Sort();
        return dates;
    }

    public static bool TryParseDatePart(string name, out DateOnly date)
    {
        date = default;
        return name.StartsWith("date=", StringComparison.Ordinal)
            && DateOnly.TryParseExact(name.AsSpan(5), DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out date);
    }

    /// <summary>A hidden temp name beside <paramref name="target"/>, unique per writer so crashed writers never collide.</summary>
    public static string TempPathFor(string target, string runId) =>
        Path.Combine(Path.GetDirectoryName(target)!, "." + Path.GetFileName(target) + "." + runId + TempSuffix);

    /// <summary>True for names of work in progress: hidden temp files and anything under the staging folder.</summary>
    public static bool IsTempName(string fileName) => fileName.StartsWith('.') && fileName.EndsWith(TempSuffix, StringComparison.Ordinal);
}

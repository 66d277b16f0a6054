using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using DuckDB.NET.Data;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// Merge units below the date (docs/datasets.md, "Incremental design"): a per-probe dataset's date partition holds
/// one file per unit, <c>probe=P/SPAN.UNIT.parquet</c>, where <c>UNIT</c> hashes what the unit's rows are made from.
/// A date's merge stages the whole partition and swaps it in as before, but a unit whose file of that name already
/// exists is carried over as a hard link instead of being written again, so a run writes only the units its new
/// captures changed.
/// </summary>
internal static class MergeUnits
{
    /// <summary><c>SPAN.UNIT.parquet</c>: <paramref name="span"/> as readers see it, then 16 hex digits of the inputs' hash.</summary>
    public static string Name(string span, IEnumerable<string> inputs)
    {
        var text = new StringBuilder();
        foreach (var input in inputs)
            text.Append(input).Append('\n');
        return span + "." + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16] + ".parquet";
    }

    /// <summary>
    /// Where unit <paramref name="name"/> of <paramref name="probeId"/> goes in the staged partition; when the current
    /// partition (null: none, as in a rebuild) already has it, it is linked there and <paramref name="carried"/> is true.
    /// </summary>
    public static string Place(string? currentPartition, string stagedPartition, string probeId, string name, out bool carried)
    {
        var folder = Path.Combine(stagedPartition, LakeLayout.ProbePart(probeId));
        Directory.CreateDirectory(folder);
        var target = Path.Combine(folder, name);
        carried = currentPartition is not null && File.Exists(Path.Combine(currentPartition, LakeLayout.ProbePart(probeId), name));
        if (carried)
            DurableFiles.Link(Path.Combine(currentPartition!, LakeLayout.ProbePart(probeId), name), target);
        return target;
    }

    /// <summary>
    /// Footer key of a unit that extends its earlier self (a flows unit, a merged state's keys): <see cref="FooterValue"/>.
    /// </summary>
    public const string FooterKey = "survey6.unit";

    /// <summary>The value under <see cref="FooterKey"/>: the settings, then the partial names the file merged, one per line.</summary>
    public static string FooterValue(string salt, IEnumerable<MergeCapture> inputs) =>
        salt + "\n" + string.Join('\n', inputs.Select(c => c.Partial));

    /// <summary>
    /// The inputs that an earlier file (its <see cref="FooterValue"/>, null: none) did not merge, when the new file can
    /// be that file plus them: same settings, and every partial it merged still an input (captures were only added).
    /// Null when it cannot, and everything must be merged again.
    /// </summary>
    public static List<MergeCapture>? Added(string? earlier, string salt, IReadOnlyList<MergeCapture> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (earlier?.Split('\n') is not [var settings, .. var partials] || settings != salt)
            return null;
        var merged = partials.ToHashSet(StringComparer.Ordinal);
        return merged.IsSubsetOf(inputs.Select(c => c.Partial)) ? inputs.Where(c => !merged.Contains(c.Partial)).ToList() : null;
    }

    /// <summary>
    /// The unit file of span <paramref name="span"/> in a probe's folder of the current partition and its
    /// <see cref="FooterKey"/> value; null when there is none, or several, or it has no such value.
    /// </summary>
    public static (string File, string Value)? Earlier(DuckDBConnection db, string probeFolder, string span)
    {
        ArgumentNullException.ThrowIfNull(db);
        if (!Directory.Exists(probeFolder))
            return null;
        var files = Directory.GetFiles(probeFolder, span + ".*.parquet");
        if (files.Length != 1)
            return null;
        return Footer(db, files[0]) is { } value ? (files[0], value) : null;
    }

    /// <summary>An hour unit's span as its file name starts: <c>YYYY-MM-DDTHH</c> (UTC) of <paramref name="hour"/> since the epoch.</summary>
    public static string HourSpan(long hour) => DateTimeOffset.UnixEpoch.AddHours(hour).ToString("yyyy-MM-dd'T'HH", CultureInfo.InvariantCulture);

    /// <summary>
    /// Records, in a capture's partial folder, the hours (since the epoch) that a partial has rows in: the hour units it
    /// feeds, so that a merge reads one small file per capture instead of the partial. Null (no time) is written as
    /// <c>none</c>. Durable before the partial folder is renamed into place: a lost line would drop a unit's rows.
    /// </summary>
    public static void WriteHours(string file, IEnumerable<long?> hours)
    {
        var text = string.Concat(hours.Select(h => (h?.ToString(CultureInfo.InvariantCulture) ?? NoHour) + "\n"));
        DurableFiles.WriteAtomically(file, Encoding.UTF8.GetBytes(text));
    }

    /// <summary>
    /// The distinct hours of <paramref name="file"/>'s rows, by the SQL <paramref name="hour"/> over its columns (no
    /// time: null, first), in order: what <see cref="WriteHours"/> records for a partial.
    /// </summary>
    public static List<long?> HoursIn(DuckDBConnection db, string file, string hour)
    {
        ArgumentNullException.ThrowIfNull(db);
        var hours = new List<long?>();
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT DISTINCT {hour} AS h FROM read_parquet({AggregateSql.Quote(file)}, hive_partitioning = false) ORDER BY h NULLS FIRST";
        using var reader = command.ExecuteReader();
        while (reader.Read())
            hours.Add(reader.IsDBNull(0) ? null : reader.GetInt64(0));
        return hours;
    }

    /// <summary>The hours <see cref="WriteHours"/> recorded.</summary>
    public static List<long?> ReadHours(string file) =>
        File.ReadAllLines(file).Select(l => l == NoHour ? (long?)null : long.Parse(l, CultureInfo.InvariantCulture)).ToList();

    private const string NoHour = "none";

    /// <summary>The <see cref="FooterKey"/> value of <paramref name="file"/>, or null.</summary>
    public static string? Footer(DuckDBConnection db, string file)
    {
        ArgumentNullException.ThrowIfNull(db);
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT decode(value) FROM parquet_kv_metadata({AggregateSql.Quote(file)}) WHERE decode(key) = {AggregateSql.Quote(FooterKey)}";
        return command.ExecuteScalar() as string;
    }

    /// <summary>The rows of the units carried over, from their footers.</summary>
    public static long Rows(DuckDBConnection db, IReadOnlyCollection<string> files)
    {
        ArgumentNullException.ThrowIfNull(db);
        if (files.Count == 0)
            return 0;
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM read_parquet([{string.Join(", ", files.Select(AggregateSql.Quote))}], hive_partitioning = false)";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>Writes <paramref name="query"/>'s rows to <paramref name="target"/> as zstd Parquet; returns the rows.</summary>
    public static long Write(DuckDBConnection db, string query, string target, string copyOptions, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        using var command = db.CreateCommand();
        command.CommandText = $"COPY ({query}) TO {AggregateSql.Quote(target)} (FORMAT parquet, COMPRESSION zstd{copyOptions})";
        using var registration = ct.Register(() => command.Cancel());
        return command.ExecuteNonQuery();
    }
}

/// <summary>
/// A capture of the date being merged: its partial folder <paramref name="Folder"/>, whose name (<paramref name="Partial"/>)
/// changes whenever its content does, and whether a capture of its probe may continue its connections or be continued by them.
/// </summary>
internal sealed record MergeCapture(string Sha256, string ProbeId, string Folder, string Partial, bool Earlier, bool Later)
{
    /// <summary>The partial file of <paramref name="name"/> (a dataset family, <see cref="AggregateSql.Partials"/>, or connections).</summary>
    public string File(string name) => Path.Combine(Folder, name + ".parquet");
}

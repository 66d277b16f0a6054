using Survey6.Aggregator.Storage;

namespace Survey6.Aggregator.Aggregate;

/// <summary>
/// The SQL of the aggregate stage, in two halves (docs/datasets.md, "Incremental design"):
/// <list type="bullet">
/// <item>per capture: <see cref="CapturePackets"/> puts one capture's packets in the temp view <c>pk</c> with
/// the duplicate flag, then one partial query per dataset aggregates it into mergeable columns (counts and sums,
/// min/max, bit-or, distinct sets as lists);</item>
/// <item>per date: the merge queries read every current partial of the date and give the datasets' final rows.</item>
/// </list>
/// Every output is ordered by its key, so a rebuild writes the same rows in the same order. Schemas: docs/datasets.md.
/// </summary>
internal static class AggregateSql
{
    private const string NsPerHour = "3600000000000";

    /// <summary>
    /// The hour since the epoch that nanoseconds <paramref name="ns"/> fall in, floored (also before 1970): the merge
    /// units' hour. <c>ns</c> minus its non-negative remainder is a whole number of hours, so the division is exact.
    /// </summary>
    public static string HourOf(string ns) => $"(({ns}) - ((({ns}) % {NsPerHour}) + {NsPerHour}) % {NsPerHour}) // {NsPerHour}";

    /// <summary>
    /// Bumped whenever a partial's columns or meaning change, so that older partials are recomputed. 2: the flows
    /// partial per hour (<c>h</c>).
    /// </summary>
    public const int PartialFormat = 2;

    /// <summary>
    /// Bumped whenever a dataset's columns change while the partials do not, so that dates merged before are merged
    /// again from their partials. 2: typed TIMESTAMP columns beside the nanosecond ones, <c>summary.hour</c> UTC.
    /// 3: <c>connections</c> as one file per probe and hour. 4: <c>flows</c> per hour, one file per probe and hour.
    /// 5: <c>dns</c>' AAAA answers as pairs in the merged state. 6: the merged states keep their per-key pair counts.
    /// </summary>
    public const int DatasetFormat = 6;

    /// <summary>
    /// A first and last time as the datasets carry them: TIMESTAMPTZ (Parquet TIMESTAMP, UTC-adjusted, microseconds;
    /// truncated, as the packets' <c>ts</c>) named <c>first_seen</c>, <c>last_seen</c>, then the exact nanoseconds.
    /// </summary>
    private static string SeenTimes(string first, string last) =>
        $"{Timestamp(first)} AS first_seen, {Timestamp(last)} AS last_seen, {first} AS first_seen_ns, {last} AS last_seen_ns";

    /// <summary>
    /// Nanoseconds since the epoch as the datasets carry a time: TIMESTAMPTZ (Parquet TIMESTAMP, UTC-adjusted,
    /// microseconds), truncated toward zero like the packets' <c>ts</c>; from epoch microseconds, so the session's time
    /// zone plays no part.
    /// </summary>
    public static string Timestamp(string nanoseconds) => $"make_timestamptz(({nanoseconds}) // 1000)";

    /// <summary>Partial files per capture, one per dataset family; prefixes derive from the merged addresses.</summary>
    public const string FlowsPartial = "flows";
    public const string AddressesPartial = "addresses";
    public const string DnsPartial = "dns";
    public const string Icmpv6Partial = "icmpv6";
    public const string RoutersPartial = "icmpv6_routers";
    public const string SummaryPartial = "summary";

    public static readonly IReadOnlyList<string> Partials = [FlowsPartial, AddressesPartial, DnsPartial, Icmpv6Partial, RoutersPartial, SummaryPartial];

    public static string Quote(string path) => "'" + path.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string ReadPartial(string glob) => $"read_parquet({Quote(glob)}, hive_partitioning = false)";

    /// <summary>
    /// The temp table of the frame numbers of one capture that are exact duplicates (<see cref="CapturePackets"/>).
    /// </summary>
    public const string CaptureDuplicates = "pk_duplicates";

    /// <summary>
    /// One capture's packets, cleaned: the temp view <c>pk</c> over its packets file, with <c>duplicate</c> true for
    /// the frames in <see cref="CaptureDuplicates"/>. A frame is an exact duplicate when an identical frame (same
    /// probe, timestamp, lengths and content hash) comes before it in the order (capture SHA-256, frame number):
    /// earlier in the same capture, or anywhere in an overlapping capture of the same probe with a smaller SHA-256
    /// (<paramref name="earlierCaptures"/>; only their frames inside this capture's time span are read). So which
    /// copy is kept does not depend on arrival order. Frames without a timestamp are never duplicates. <c>t_ns</c>
    /// places them at their capture's window start.
    /// </summary>
    /// <remarks>
    /// A view rather than a table of every column: each partial reads only the columns it needs from the Parquet
    /// file, and the duplicates, usually none, are a small table of frame numbers (docs/performance.md, "Partials
    /// through a view, pair counts kept in the state").
    /// </remarks>
    public static string CapturePackets(string packetsFile, IReadOnlyList<string> earlierCaptures, long? fromNs, long? toNs)
    {
        var packets = $"read_parquet({Quote(packetsFile)}, hive_partitioning = false)";
        var inEarlier = earlierCaptures.Count == 0
            ? ""
            : $"""

              UNION
              SELECT frame FROM timed src
              WHERE EXISTS (SELECT 1 FROM read_parquet([{string.Join(", ", earlierCaptures.Select(Quote))}], hive_partitioning = false) e
                            WHERE e.time_epoch_ns = src.time_epoch_ns AND e.frame_hash IS NOT DISTINCT FROM src.frame_hash
                              AND e.cap_len = src.cap_len AND e.frame_len = src.frame_len
                              {(fromNs is { } f && toNs is { } t ? $"AND e.time_epoch_ns BETWEEN {f} AND {t}" : "")})
              """;
        // Repeats inside one capture are rare: a narrow GROUP BY finds them, and only their frames are numbered.
        return $"""
            CREATE OR REPLACE TEMP TABLE {CaptureDuplicates} AS
            WITH timed AS (
                SELECT frame, time_epoch_ns, frame_hash, cap_len, frame_len FROM {packets} WHERE time_epoch_ns IS NOT NULL
            ),
            repeats AS (
                SELECT time_epoch_ns, frame_hash, cap_len, frame_len FROM timed
                GROUP BY time_epoch_ns, frame_hash, cap_len, frame_len
                HAVING count(*) > 1
            )
            SELECT frame FROM (
                SELECT s.frame, row_number() OVER (PARTITION BY s.time_epoch_ns, s.frame_hash, s.cap_len, s.frame_len ORDER BY s.frame) AS copy
                FROM timed s SEMI JOIN repeats r ON r.time_epoch_ns = s.time_epoch_ns AND r.frame_hash IS NOT DISTINCT FROM s.frame_hash
                    AND r.cap_len = s.cap_len AND r.frame_len = s.frame_len
            )
            WHERE copy > 1{inEarlier};
            CREATE OR REPLACE TEMP VIEW pk AS
            SELECT
                probe_id, capture_sha256, frame, interface_id, frame_len, cap_len, encapsulation,
                flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, flow_payload_len,
                src_type, src_iid, dst_type, dst_iid, tcp_flags, icmpv6_type, icmpv6_code, ra_prefixes,
                dns_transport, dns_response, dns_qname, dns_qtype, dns_rcode, dns_aaaa,
                malformed, truncated,
                coalesce(time_epoch_ns, window_start_ns) AS t_ns,
                coalesce(frame IN (SELECT frame FROM {CaptureDuplicates}), false) AS duplicate
            FROM {packets};
            """;
    }

    /// <summary>The partial of <paramref name="name"/> over <c>pk</c>.</summary>
    public static string Partial(string name) => name switch
    {
        FlowsPartial => $"""
            SELECT
                probe_id, flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, encapsulation,
                {HourOf("t_ns")} AS h,
                min(t_ns) AS first_seen_ns, max(t_ns) AS last_seen_ns,
                count(*) AS packets,
                CAST(sum(frame_len) AS BIGINT) AS bytes,
                CAST(sum(flow_payload_len) AS BIGINT) AS payload_bytes,
                CAST(bit_or(tcp_flags) AS USMALLINT) AS tcp_flags,
                count(*) FILTER (WHERE malformed) AS malformed_packets
            FROM pk
            WHERE NOT duplicate AND flow_src IS NOT NULL
            GROUP BY probe_id, flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, encapsulation, h
            """,
        // Type and IID class are functions of the address, so min() only picks the one value deterministically.
        AddressesPartial => """
            WITH seen AS (
                SELECT flow_src AS address, src_type AS type, src_iid AS iid_class, probe_id, t_ns, 1 AS as_src, 0 AS as_dst
                FROM pk WHERE NOT duplicate AND flow_src IS NOT NULL
                UNION ALL
                SELECT flow_dst, dst_type, dst_iid, probe_id, t_ns, 0, 1
                FROM pk WHERE NOT duplicate AND flow_dst IS NOT NULL
            )
            SELECT address, min(type) AS type, min(iid_class) AS iid_class,
                min(t_ns) AS first_seen_ns, max(t_ns) AS last_seen_ns,
                CAST(sum(as_src) AS BIGINT) AS packets_as_src, CAST(sum(as_dst) AS BIGINT) AS packets_as_dst,
                min(probe_id) AS probe_id
            FROM seen GROUP BY address
            """,
        // Clients ask, servers answer: a query's client is its source, a response's its destination.
        DnsPartial => """
            SELECT
                dns_transport AS transport, dns_qname AS qname, dns_qtype AS qtype, dns_rcode AS rcode,
                count(*) AS messages,
                count(*) FILTER (WHERE dns_response = false) AS queries,
                count(*) FILTER (WHERE dns_response) AS responses,
                list_distinct(list(CASE WHEN dns_response THEN flow_dst WHEN NOT dns_response THEN flow_src END)) AS clients,
                list_distinct(list(CASE WHEN dns_response THEN flow_src WHEN NOT dns_response THEN flow_dst END)) AS servers,
                min(t_ns) AS first_seen_ns, max(t_ns) AS last_seen_ns,
                CAST(sum(len(dns_aaaa)) AS BIGINT) AS aaaa_records,
                list_distinct(flatten(list(dns_aaaa) FILTER (WHERE dns_aaaa IS NOT NULL))) AS aaaa,
                min(probe_id) AS probe_id
            FROM pk
            WHERE NOT duplicate AND dns_transport IS NOT NULL
            GROUP BY dns_transport, dns_qname, dns_qtype, dns_rcode
            """,
        Icmpv6Partial => """
            SELECT probe_id, icmpv6_type AS type, icmpv6_code AS code,
                count(*) AS packets,
                list_distinct(list(flow_src)) AS sources, list_distinct(list(flow_dst)) AS destinations,
                min(t_ns) AS first_seen_ns, max(t_ns) AS last_seen_ns
            FROM pk
            WHERE NOT duplicate AND icmpv6_type IS NOT NULL
            GROUP BY probe_id, icmpv6_type, icmpv6_code
            """,
        // Routers are the sources of Router Advertisements (ICMPv6 type 134).
        RoutersPartial => """
            WITH ra AS (
                SELECT probe_id, flow_src AS router, t_ns, ra_prefixes FROM pk
                WHERE NOT duplicate AND icmpv6_type = 134 AND flow_src IS NOT NULL
            ),
            agg AS (
                SELECT probe_id, router, count(*) AS advertisements, min(t_ns) AS first_seen_ns, max(t_ns) AS last_seen_ns
                FROM ra GROUP BY probe_id, router
            ),
            px AS (
                SELECT probe_id, router, list_distinct(list(prefix)) AS prefixes
                FROM (SELECT probe_id, router, unnest(ra_prefixes) AS prefix FROM ra WHERE ra_prefixes IS NOT NULL)
                GROUP BY probe_id, router
            )
            SELECT agg.probe_id, agg.router, agg.advertisements, px.prefixes, agg.first_seen_ns, agg.last_seen_ns
            FROM agg LEFT JOIN px USING (probe_id, router)
            """,
        SummaryPartial => $"""
            SELECT probe_id, capture_sha256, t_ns // {NsPerHour} AS h,
                count(*) AS frames,
                count(*) FILTER (WHERE duplicate) AS duplicates,
                count(*) FILTER (WHERE NOT duplicate AND interface_id >= 0) AS packets,
                CAST(coalesce(sum(frame_len) FILTER (WHERE NOT duplicate AND interface_id >= 0), 0) AS BIGINT) AS bytes,
                count(*) FILTER (WHERE NOT duplicate AND encapsulation IS NOT NULL) AS ipv6_packets,
                count(*) FILTER (WHERE NOT duplicate AND encapsulation IS NOT NULL AND encapsulation <> 'native') AS tunnelled_packets,
                count(*) FILTER (WHERE NOT duplicate AND interface_id >= 0 AND encapsulation IS NULL) AS non_ipv6_packets,
                count(*) FILTER (WHERE NOT duplicate AND flow_protocol = 6) AS tcp_packets,
                count(*) FILTER (WHERE NOT duplicate AND flow_protocol = 17) AS udp_packets,
                count(*) FILTER (WHERE NOT duplicate AND flow_protocol = 58) AS icmpv6_packets,
                count(*) FILTER (WHERE NOT duplicate AND flow_protocol NOT IN (6, 17, 58)) AS other_packets,
                count(*) FILTER (WHERE NOT duplicate AND dns_transport IS NOT NULL) AS dns_messages,
                count(*) FILTER (WHERE NOT duplicate AND malformed) AS malformed_packets,
                count(*) FILTER (WHERE NOT duplicate AND truncated) AS truncated_packets
            FROM pk WHERE t_ns IS NOT NULL
            GROUP BY probe_id, capture_sha256, h
            """,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown partial"),
    };

    /// <summary>
    /// One hour's flows of a probe (<paramref name="hour"/> since the epoch, as <see cref="HourOf"/>; null: the flows of
    /// frames with no time at all) from its partials. A flow's captures are those with at least one of its
    /// (non-duplicate) packets in the hour: one partial row each.
    /// </summary>
    public static string Flows(IReadOnlyList<string> partials, long? hour) => FlowsOf(FlowsInHour(partials, hour));

    /// <summary>
    /// The same rows as <see cref="Flows"/> over all the partials of the probe's hour, from its earlier file (whose
    /// rows merge the partials it was made from) and the partials added since: sums, minima, maxima and bit-ors merge in
    /// any grouping, and a row of the earlier file counts the captures it already merged. As for the merged states
    /// (<see cref="StateKeys"/>), only the flows the added partials touch are aggregated again; the earlier file's
    /// other rows are copied.
    /// </summary>
    public static string FlowsAdded(string earlier, IReadOnlyList<string> added, long? hour)
    {
        ArgumentNullException.ThrowIfNull(added);
        var readEarlier = $"read_parquet({Quote(earlier)}, hive_partitioning = false)";
        var key = string.Join(", ", FlowKey);
        var merged = MergeTouched(FlowKey, readEarlier, FlowsInHour(added, hour), rows => FlowsOf($"""
            SELECT {key}, first_seen_ns, last_seen_ns, packets, bytes, payload_bytes, tcp_flags, malformed_packets, captures
            FROM ({rows})
            """, ordered: false));
        return $"SELECT * FROM ({merged}) ORDER BY {FlowOrder}";
    }

    /// <summary>The partials' rows of one hour, without the hour, each counting as one capture.</summary>
    private static string FlowsInHour(IReadOnlyList<string> partials, long? hour) =>
        $"SELECT * EXCLUDE (h), 1 AS captures FROM {ReadFiles(partials)} WHERE h {(hour is { } h ? "= " + h.ToString(System.Globalization.CultureInfo.InvariantCulture) : "IS NULL")}";

    /// <summary>
    /// An earlier merged file plus added rows, merged again only where the added rows touch: the earlier rows whose
    /// <paramref name="key"/> no added row has are copied as they are (an anti-join), and <paramref name="aggregate"/>
    /// merges the rest with the added rows (its argument is a query of those rows; the CTE <c>touched</c> holds their
    /// keys). So the aggregate holds the added keys, not the day's (<see cref="FlowsAdded"/>, <see cref="StateKeys"/>,
    /// <see cref="StatePairs"/>, <see cref="StateCounts"/>).
    /// </summary>
    private static string MergeTouched(string[] key, string readEarlier, string addedRows, Func<string, string> aggregate)
    {
        var columns = string.Join(", ", key);
        return $"""
            WITH added AS ({addedRows}),
            touched AS (SELECT DISTINCT {columns} FROM added)
            SELECT e.* FROM {readEarlier} e ANTI JOIN touched t ON {SameKey("e", "t", key)}
            UNION ALL BY NAME
            {aggregate($"SELECT e.* FROM {readEarlier} e SEMI JOIN touched t ON {SameKey("e", "t", key)} UNION ALL BY NAME SELECT * FROM added")}
            """;
    }

    private static readonly string[] FlowKey = ["probe_id", "flow_src", "flow_dst", "flow_protocol", "flow_src_port", "flow_dst_port", "encapsulation"];

    private const string FlowOrder = "probe_id, flow_src, flow_dst, flow_protocol, flow_src_port NULLS FIRST, flow_dst_port NULLS FIRST, encapsulation";

    private static string ReadFiles(IReadOnlyList<string> files) =>
        $"read_parquet([{string.Join(", ", files.Select(Quote))}], hive_partitioning = false)";

    private static string FlowsOf(string rows, bool ordered = true) => $"""
        SELECT
            probe_id, flow_src, flow_dst, flow_protocol, flow_src_port, flow_dst_port, encapsulation,
            {SeenTimes("min(first_seen_ns)", "max(last_seen_ns)")},
            CAST(sum(packets) AS BIGINT) AS packets,
            CAST(sum(bytes) AS BIGINT) AS bytes,
            CAST(sum(payload_bytes) AS BIGINT) AS payload_bytes,
            CAST(bit_or(tcp_flags) AS USMALLINT) AS tcp_flags,
            CAST(sum(malformed_packets) AS BIGINT) AS malformed_packets,
            CAST(sum(captures) AS BIGINT) AS captures
        FROM ({rows})
        GROUP BY {string.Join(", ", FlowKey)}
        {(ordered ? "ORDER BY " + FlowOrder : "")}
        """;

    /// <summary>
    /// Distinct flow-view addresses with what is derived from them; the prefixes dataset reads it too. Anonymised
    /// addresses embed nothing true (their interface identifiers are scrambled), so the embedded IPv4 and MAC are NULL.
    /// </summary>
    public static string AddressTable(string partials, bool anonymised) => $$"""
        CREATE OR REPLACE TEMP TABLE addr AS
        WITH agg AS (
            SELECT address, min(type) AS type, min(iid_class) AS iid_class,
                min(first_seen_ns) AS first_seen_ns, max(last_seen_ns) AS last_seen_ns,
                CAST(sum(packets_as_src) AS BIGINT) AS packets_as_src, CAST(sum(packets_as_dst) AS BIGINT) AS packets_as_dst,
                list_sort(list_distinct(list(probe_id))) AS probes
            FROM {{ReadPartial(partials)}} GROUP BY address
        )
        SELECT address,
            ipv6_prefix(address, 32) AS prefix32, ipv6_prefix(address, 48) AS prefix48, ipv6_prefix(address, 64) AS prefix64,
            type, iid_class,
            {{(anonymised ? "CAST(NULL AS VARCHAR)" : "ipv6_embedded_ipv4(address)")}} AS embedded_ipv4,
            {{(anonymised ? "CAST(NULL AS VARCHAR)" : "ipv6_mac(address)")}} AS mac,
            {{SeenTimes("first_seen_ns", "last_seen_ns")}}, packets_as_src, packets_as_dst, probes, len(probes) AS probe_count
        FROM agg
        """;

    public static string Addresses => """
        SELECT address, prefix48, prefix64, type, iid_class, embedded_ipv4, mac, first_seen, last_seen, first_seen_ns, last_seen_ns,
            packets_as_src, packets_as_dst, probes, probe_count
        FROM addr ORDER BY address
        """;

    /// <summary>
    /// Per /32, /48 and /64 of the address table. A prefix's probes come from its distinct (prefix, probe) pairs, not
    /// from one list of every address's probe list: on a day of 105 M packets of new traffic, gathering those lists for
    /// the /32s (each a group of millions of addresses) ran DuckDB's 512 MiB out of memory (docs/performance.md), while
    /// the pairs are an ordinary aggregate, as small as the prefixes times their probes.
    /// </summary>
    public static string Prefixes => $"""
        WITH p AS NOT MATERIALIZED (
            SELECT 32 AS prefix_len, prefix32 AS prefix, * EXCLUDE (prefix32, prefix48, prefix64, first_seen, last_seen) FROM addr
            UNION ALL SELECT 48, prefix48, * EXCLUDE (prefix32, prefix48, prefix64, first_seen, last_seen) FROM addr
            UNION ALL SELECT 64, prefix64, * EXCLUDE (prefix32, prefix48, prefix64, first_seen, last_seen) FROM addr
        ),
        counted AS (
            SELECT prefix_len, prefix,
                count(*) AS addresses,
                CAST(sum(packets_as_src) AS BIGINT) AS packets_as_src,
                CAST(sum(packets_as_dst) AS BIGINT) AS packets_as_dst,
                min(first_seen_ns) AS first_ns, max(last_seen_ns) AS last_ns,
                histogram(coalesce(iid_class, 'none')) AS iid_mix
            FROM p
            GROUP BY prefix_len, prefix
        ),
        seen_by AS (
            SELECT prefix_len, prefix, list(probe ORDER BY probe) AS probes
            FROM (SELECT DISTINCT prefix_len, prefix, unnest(probes) AS probe FROM p)
            GROUP BY prefix_len, prefix
        )
        SELECT prefix_len, prefix, addresses, packets_as_src, packets_as_dst,
            {SeenTimes("first_ns", "last_ns")},
            iid_mix, coalesce(probes, CAST([] AS VARCHAR[])) AS probes
        FROM counted LEFT JOIN seen_by USING (prefix_len, prefix)
        ORDER BY prefix_len, prefix
        """;

    // Declared before the states below, which their initialisers read.
    private static readonly string[] DnsKey = ["transport", "qname", "qtype", "rcode"];
    private static readonly string[] Icmpv6Key = ["probe_id", "type", "code"];

    /// <summary>
    /// A dataset made from the date's merged state rather than from its partials directly: one whose distinct counts do
    /// not merge from counts (<c>dns</c>' clients and servers, <c>icmpv6</c>'s sources and destinations). The state is the
    /// merge of every partial of the date, files in the date's partials folder (<c>merged/</c>): <c>DATASET_keys</c>,
    /// the keys with their mergeable columns (<paramref name="Sums"/>, over the earlier state's rows and the added
    /// partials' rows as <paramref name="FromPartial"/> gives them), and one <c>DATASET_LIST</c> per list of
    /// <paramref name="Lists"/>, the distinct (key, value) pairs, as rows rather than lists so that DuckDB can spill
    /// them. <paramref name="Counted"/> are the lists the dataset gives as numbers, kept per key in <c>DATASET_counts</c>
    /// (<see cref="StateCounts"/>); the others it gives as sorted lists, made one file's keys at a time. It is kept so
    /// that a run merges only the partials added since (docs/datasets.md, "Incremental design").
    /// </summary>
    internal sealed record MergedState(string Dataset, string Partial, string[] Key, string Sums, string FromPartial, string[] Lists, string[] Counted)
    {
        public string KeysFile(string folder) => Path.Combine(folder, Dataset + "_keys.parquet");

        public string ListFile(string folder, string list) => Path.Combine(folder, Dataset + "_" + list + ".parquet");

        /// <summary>The per-key numbers of distinct values of the <see cref="Counted"/> lists (<see cref="StateCounts"/>).</summary>
        public string CountsFile(string folder) => Path.Combine(folder, Dataset + "_counts.parquet");

        /// <summary>Every file of the state in <paramref name="folder"/>: keys, one per list, counts.</summary>
        public IEnumerable<string> Files(string folder) => [KeysFile(folder), .. Lists.Select(list => ListFile(folder, list)), CountsFile(folder)];
    }

    public static readonly MergedState DnsState = new(
        "dns", DnsPartial, DnsKey,
        """
        CAST(sum(messages) AS BIGINT) AS messages,
        CAST(sum(queries) AS BIGINT) AS queries,
        CAST(sum(responses) AS BIGINT) AS responses,
        min(first_seen_ns) AS first_seen_ns, max(last_seen_ns) AS last_seen_ns,
        CAST(sum(aaaa_records) AS BIGINT) AS aaaa_records,
        list_distinct(flatten(list(probes))) AS probes
        """,
        "* EXCLUDE (clients, servers, aaaa, probe_id), [probe_id] AS probes",
        ["clients", "servers", "aaaa"],
        ["clients", "servers"]);

    public static readonly MergedState Icmpv6State = new(
        "icmpv6", Icmpv6Partial, Icmpv6Key,
        "CAST(sum(packets) AS BIGINT) AS packets, min(first_seen_ns) AS first_seen_ns, max(last_seen_ns) AS last_seen_ns",
        "* EXCLUDE (sources, destinations)",
        ["sources", "destinations"],
        ["sources", "destinations"]);

    /// <summary>
    /// The state's keys from the earlier state's (null: none) and the added partials'. Only the keys the added partials
    /// touch are aggregated again; the earlier state's other rows are copied as they are. So the run's aggregate
    /// follows the added data, and its list columns (<c>dns</c>' AAAA answers and probes), which DuckDB cannot spill,
    /// stay as large as the added keys' rather than the whole day's: aggregating every key of a day of 1.1 M names at
    /// once ran out of DuckDB's 512 MiB (docs/performance.md).
    /// </summary>
    public static string StateKeys(MergedState state, string? earlier, IReadOnlyList<string> added)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(added);
        var key = string.Join(", ", state.Key);
        var fromAdded = $"SELECT {state.FromPartial} FROM {ReadFiles(added)}";
        if (earlier is null)
            return $"SELECT {key}, {state.Sums} FROM ({fromAdded}) GROUP BY {key}";
        var readEarlier = $"read_parquet({Quote(earlier)}, hive_partitioning = false)";
        if (added.Count == 0)
            return $"SELECT * FROM {readEarlier}";
        return MergeTouched(state.Key, readEarlier, fromAdded, rows => $"SELECT {key}, {state.Sums} FROM ({rows}) GROUP BY {key}");
    }

    /// <summary>
    /// The state's distinct (key, value) pairs of the partials' list <paramref name="list"/>, from the earlier state's
    /// (null: none) and the added partials'. As for the keys (<see cref="StateKeys"/>), only the pairs of the keys the
    /// added partials touch are made distinct again, and the earlier state's other pairs are copied: a DISTINCT over every
    /// pair of the day ran out of DuckDB's 512 MiB at 50 M packets of new traffic (docs/performance.md).
    /// </summary>
    public static string StatePairs(MergedState state, string? earlier, IReadOnlyList<string> added, string list)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(added);
        var key = string.Join(", ", state.Key);
        var fromAdded = $"SELECT {key}, unnest({list}) AS v FROM {ReadFiles(added)}";
        static string Distinct(string key, string rows) => $"SELECT DISTINCT {key}, v FROM ({rows}) WHERE v IS NOT NULL";
        if (earlier is null)
            return Distinct(key, fromAdded);
        var readEarlier = $"read_parquet({Quote(earlier)}, hive_partitioning = false)";
        if (added.Count == 0)
            return $"SELECT * FROM {readEarlier}";
        return MergeTouched(state.Key, readEarlier, fromAdded, rows => Distinct(key, rows));
    }

    /// <summary>
    /// Per key of <paramref name="state"/>, its numbers of distinct values in each counted list (<c>n_LIST</c>), from
    /// the earlier state's counts (null: none) and the pairs files just written to <paramref name="folder"/>. As for the
    /// pairs (<see cref="StatePairs"/>), only the keys the <paramref name="added"/> partials touch are counted again; the
    /// other keys' counts are copied. Counting every pair of the day in each run, as a temporary table before the
    /// dataset's query, cost the day's pairs every run and held the day's keys in DuckDB's memory: on a day of 4.8 M
    /// DNS names the state and <c>dns</c> took 16-20 % more CPU that way, and the run a third more peak RSS
    /// (docs/performance.md).
    /// </summary>
    public static string StateCounts(MergedState state, string? earlier, IReadOnlyList<string> added, string folder)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(added);
        var key = string.Join(", ", state.Key);
        var pairs = string.Join(" UNION ALL ", state.Counted.Select((list, i) =>
            $"SELECT {key}, {i} AS side FROM read_parquet({Quote(state.ListFile(folder, list))}, hive_partitioning = false)"));
        var counts = string.Join(", ", state.Counted.Select((list, i) => $"count(*) FILTER (WHERE side = {i}) AS n_{list}"));
        string Count(string rows) => $"SELECT {key}, {counts} FROM ({rows}) GROUP BY {key}";
        if (earlier is null)
            return Count(pairs);
        var readEarlier = $"read_parquet({Quote(earlier)}, hive_partitioning = false)";
        if (added.Count == 0)
            return $"SELECT * FROM {readEarlier}";
        // A touched key's counts are not its earlier counts plus anything: they come from its pairs just made distinct.
        return MergeTouched(state.Key, readEarlier, $"SELECT {key} FROM {ReadFiles(added)}",
            _ => Count($"SELECT p.* FROM ({pairs}) p SEMI JOIN touched t ON {SameKey("p", "t", state.Key)}"));
    }

    /// <summary>
    /// How many files the date's <c>dns</c> is written in: one per <paramref name="namesPerFile"/> keys of the merged
    /// state's <paramref name="keys"/> (the sort of one file of 1.9 M names, with their lists, ran out of DuckDB's 512MiB).
    /// </summary>
    public static int DnsFiles(long keys, long namesPerFile) => (int)Math.Max(1, (keys + namesPerFile - 1) / namesPerFile);

    /// <summary>
    /// File <paramref name="part"/> of <paramref name="parts"/> of the <c>dns</c> dataset from the date's merged state
    /// (<see cref="DnsState"/>) in <paramref name="folder"/>: the names whose hash falls in
    /// the part, sorted, so that each sort holds a share of the day rather than all of it.
    /// </summary>
    public static string Dns(string folder, int part = 0, int parts = 1) => $"""
        SELECT
            k.transport, k.qname, k.qtype, k.rcode, k.messages, k.queries, k.responses,
            coalesce(c.n_clients, 0) AS clients, coalesce(c.n_servers, 0) AS servers,
            {SeenTimes("k.first_seen_ns", "k.last_seen_ns")},
            coalesce(k.aaaa_records, 0) AS aaaa_records, coalesce(a.aaaa, []) AS aaaa, list_sort(k.probes) AS probes
        FROM read_parquet({Quote(DnsState.KeysFile(folder))}, hive_partitioning = false) k
        LEFT JOIN (
            SELECT * FROM read_parquet({Quote(DnsState.CountsFile(folder))}, hive_partitioning = false)
            {InPart("qname", part, parts)}) c ON {SameKey("k", "c", DnsKey)}
        LEFT JOIN (
            SELECT {string.Join(", ", DnsKey)}, list(v ORDER BY v) AS aaaa
            FROM read_parquet({Quote(DnsState.ListFile(folder, "aaaa"))}, hive_partitioning = false)
            {InPart("qname", part, parts)}
            GROUP BY ALL) a ON {SameKey("k", "a", DnsKey)}
        {InPart("k.qname", part, parts)}
        ORDER BY k.transport, k.qname NULLS FIRST, k.qtype NULLS FIRST, k.rcode NULLS FIRST
        """;

    /// <summary>The WHERE clause of part <paramref name="part"/> of <paramref name="parts"/> by a hash of <paramref name="column"/>; none for one part.</summary>
    private static string InPart(string column, int part, int parts) => parts == 1 ? "" : $"WHERE hash({column}) % {parts} = {part}";

    /// <summary>
    /// The temporary table <paramref name="dataset"/>'s query is the last to read (datasets are written in
    /// <see cref="LakeLayout.AggregateDatasets"/>' order; the address table is read by connections, addresses and
    /// prefixes), or null.
    /// </summary>
    public static string? LastReaderOf(string dataset) => dataset switch
    {
        LakeLayout.Prefixes => "addr",
        _ => null,
    };

    /// <summary>Join condition on every key column, NULL matching NULL as in GROUP BY.</summary>
    private static string SameKey(string left, string right, string[] keys) =>
        string.Join(" AND ", keys.Select(k => $"{left}.{k} IS NOT DISTINCT FROM {right}.{k}"));

    /// <summary>The <c>icmpv6</c> dataset from the date's merged state (<see cref="Icmpv6State"/>) in <paramref name="folder"/>.</summary>
    public static string Icmpv6(string folder) => $"""
        WITH k AS (
            SELECT probe_id, type, code, packets, {SeenTimes("first_seen_ns", "last_seen_ns")}
            FROM read_parquet({Quote(Icmpv6State.KeysFile(folder))}, hive_partitioning = false)
        )
        SELECT k.probe_id, k.type, k.code, {Ipv6Functions.Icmpv6TypeNameSql("k.type")} AS type_name,
            k.packets, coalesce(c.n_sources, 0) AS sources, coalesce(c.n_destinations, 0) AS destinations,
            k.first_seen, k.last_seen, k.first_seen_ns, k.last_seen_ns
        FROM k
        LEFT JOIN read_parquet({Quote(Icmpv6State.CountsFile(folder))}, hive_partitioning = false) c ON {SameKey("k", "c", Icmpv6Key)}
        ORDER BY k.probe_id, k.type, k.code NULLS FIRST
        """;

    public static string Icmpv6Routers(string partials) => $"""
        SELECT probe_id, router, CAST(sum(advertisements) AS BIGINT) AS advertisements,
            coalesce(list_sort(list_distinct(flatten(list(prefixes) FILTER (WHERE prefixes IS NOT NULL)))), []) AS prefixes,
            {SeenTimes("min(first_seen_ns)", "max(last_seen_ns)")}
        FROM {ReadPartial(partials)}
        GROUP BY probe_id, router
        ORDER BY probe_id, router
        """;

    /// <summary>
    /// Per probe and hour, from the per-capture-hour partials and the date's captures rows. <c>dropped</c> is every
    /// kind a capture counts (kernel + interface + queue + disk); drops are counted per capture, so each capture's
    /// drops are spread over its hours in proportion to its frames, rounded so that the hours add up to the
    /// capture's count exactly (a capture without frames puts them in its window's first hour).
    /// <c>completeness</c> = frames / (frames + dropped). Coverage is the share of the hour inside some capture
    /// window of the probe.
    /// </summary>
    public static string Summary(string capturesGlob, string partials) => $"""
        WITH capture_files AS (
            SELECT * FROM read_parquet({Quote(capturesGlob)}, hive_partitioning = true, union_by_name = true)
            -- Rows parsed before each drop kind had its own column lack some names (if_dropped and os_dropped were
            -- the interface and kernel counts): an empty row of every name lets old and new files be read together.
            UNION ALL BY NAME
            SELECT CAST(NULL AS VARCHAR) AS capture_sha256,
                CAST(NULL AS BIGINT) AS kernel_dropped, CAST(NULL AS BIGINT) AS interface_dropped,
                CAST(NULL AS BIGINT) AS queue_dropped, CAST(NULL AS BIGINT) AS disk_dropped,
                CAST(NULL AS BIGINT) AS os_dropped, CAST(NULL AS BIGINT) AS if_dropped
            WHERE false
        ),
        kinds AS (
            SELECT capture_sha256, probe_id, window_start_ns, window_end_ns,
                coalesce(kernel_dropped, os_dropped) AS kernel, coalesce(interface_dropped, if_dropped) AS interface,
                queue_dropped AS queue, disk_dropped AS disk
            FROM capture_files
        ),
        caps AS (
            SELECT capture_sha256, probe_id, window_start_ns, window_end_ns,
                coalesce(kernel, 0) + coalesce(interface, 0) + coalesce(queue, 0) + coalesce(disk, 0) AS dropped,
                kernel IS NOT NULL OR interface IS NOT NULL OR queue IS NOT NULL OR disk IS NOT NULL AS has_drops
            FROM kinds
        ),
        per_capture AS (
            SELECT * FROM {ReadPartial(partials)}
        ),
        shared AS (
            -- An hour gets the capture's drops up to its end minus those up to its start, each rounded down:
            -- proportional to frames, in whole frames, and adding up to the capture's count.
            SELECT pc.*, c.has_drops,
                (coalesce(c.dropped, 0) * sum(pc.frames) OVER upto) // sum(pc.frames) OVER whole
                    - (coalesce(c.dropped, 0) * (sum(pc.frames) OVER upto - pc.frames)) // sum(pc.frames) OVER whole AS dropped
            FROM per_capture pc LEFT JOIN caps c USING (capture_sha256)
            WINDOW whole AS (PARTITION BY pc.capture_sha256),
                upto AS (PARTITION BY pc.capture_sha256 ORDER BY pc.h ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ),
        empty AS (
            SELECT probe_id, capture_sha256, window_start_ns // {NsPerHour} AS h, dropped, has_drops
            FROM caps
            WHERE window_start_ns IS NOT NULL AND capture_sha256 NOT IN (SELECT capture_sha256 FROM per_capture)
        ),
        coverage AS (
            SELECT probe_id, h,
                sum(least(window_end_ns, (h + 1) * {NsPerHour}) - greatest(window_start_ns, h * {NsPerHour})) AS covered_ns
            FROM (
                SELECT probe_id, window_start_ns, window_end_ns,
                    unnest(range(window_start_ns // {NsPerHour}, window_end_ns // {NsPerHour} + 1)) AS h
                FROM caps WHERE window_start_ns IS NOT NULL AND window_end_ns >= window_start_ns
            )
            GROUP BY probe_id, h
        ),
        combined AS (
            SELECT * FROM shared UNION ALL BY NAME SELECT * FROM empty
        ),
        totals AS (
            SELECT probe_id, h,
                count(DISTINCT capture_sha256) AS captures,
                coalesce(sum(frames), 0) AS frames,
                coalesce(sum(duplicates), 0) AS duplicates,
                coalesce(sum(packets), 0) AS packets,
                coalesce(sum(bytes), 0) AS bytes,
                coalesce(sum(ipv6_packets), 0) AS ipv6_packets,
                coalesce(sum(tunnelled_packets), 0) AS tunnelled_packets,
                coalesce(sum(non_ipv6_packets), 0) AS non_ipv6_packets,
                coalesce(sum(tcp_packets), 0) AS tcp_packets,
                coalesce(sum(udp_packets), 0) AS udp_packets,
                coalesce(sum(icmpv6_packets), 0) AS icmpv6_packets,
                coalesce(sum(other_packets), 0) AS other_packets,
                coalesce(sum(dns_messages), 0) AS dns_messages,
                coalesce(sum(malformed_packets), 0) AS malformed_packets,
                coalesce(sum(truncated_packets), 0) AS truncated_packets,
                coalesce(sum(dropped), 0) AS dropped,
                bool_or(coalesce(has_drops, false)) AS has_drops
            FROM combined
            GROUP BY probe_id, h
        )
        SELECT t.probe_id, make_timestamptz(t.h * 3600000000) AS hour,
            t.captures,
            CAST(t.frames AS BIGINT) AS frames, CAST(t.duplicates AS BIGINT) AS duplicates,
            CAST(t.packets AS BIGINT) AS packets, CAST(t.bytes AS BIGINT) AS bytes,
            CAST(t.ipv6_packets AS BIGINT) AS ipv6_packets, CAST(t.tunnelled_packets AS BIGINT) AS tunnelled_packets,
            CAST(t.non_ipv6_packets AS BIGINT) AS non_ipv6_packets,
            CAST(t.tcp_packets AS BIGINT) AS tcp_packets, CAST(t.udp_packets AS BIGINT) AS udp_packets,
            CAST(t.icmpv6_packets AS BIGINT) AS icmpv6_packets, CAST(t.other_packets AS BIGINT) AS other_packets,
            CAST(t.dns_messages AS BIGINT) AS dns_messages,
            CAST(t.malformed_packets AS BIGINT) AS malformed_packets, CAST(t.truncated_packets AS BIGINT) AS truncated_packets,
            CASE WHEN t.has_drops THEN CAST(t.dropped AS BIGINT) END AS dropped,
            CASE WHEN t.has_drops THEN CAST(t.frames AS DOUBLE) / nullif(t.frames + t.dropped, 0) END AS completeness,
            least(1.0, coalesce(cv.covered_ns, 0) / {NsPerHour}.0) AS coverage
        FROM totals t LEFT JOIN coverage cv ON cv.probe_id = t.probe_id AND cv.h = t.h
        ORDER BY t.probe_id, hour
        """;
}

using DuckDB.NET.Data;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Connections;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Tests.Connections;

/// <summary>The fragments file (<see cref="ConnectionFragmentFile"/>): what the stitcher reads back is what the tracker wrote.</summary>
public sealed class FragmentFileTests : IDisposable
{
    private static readonly Ipv6Address Client = Ipv6Address.Parse("2001:db8:1::10");
    private static readonly Ipv6Address Server = Ipv6Address.Parse("2001:db8:2::20");
    private const long Second = 1_000_000_000;

    private readonly string _folder = Directory.CreateTempSubdirectory("survey6-fragments-").FullName;

    [Fact]
    public void Fragments_read_back_exactly_as_written()
    {
        long t = 1_700_000_000 * Second;
        var tracker = new ConnectionTracker("probe-a", "capture-1", t, new ConnectionOptions());
        // A TCP session with a retransmission and a gap, a reset attempt, DNS over UDP, an ICMPv6 echo and a one-way message.
        Tcp(tracker, t, Client, 50000, Server, 443, 0x02, 1000, 0, 0);
        Tcp(tracker, t + 1, Server, 443, Client, 50000, 0x12, 9000, 1001, 0);
        Tcp(tracker, t + 2, Client, 50000, Server, 443, 0x10, 1001, 9001, 0);
        Tcp(tracker, t + 3, Client, 50000, Server, 443, 0x18, 1001, 9001, 100);
        Tcp(tracker, t + 4, Client, 50000, Server, 443, 0x18, 1001, 9001, 100);
        Tcp(tracker, t + 5, Server, 443, Client, 50000, 0x10, 9001, 1301, 0);
        Tcp(tracker, t + 6, Client, 50000, Server, 443, 0x11, 1301, 9001, 0);
        Tcp(tracker, t + 6, Server, 443, Client, 50000, 0x11, 9001, 1302, 0);
        Tcp(tracker, t + 7, Client, 50001, Server, 80, 0x02, 5, 0, 0);
        Tcp(tracker, t + 8, Server, 80, Client, 50001, 0x14, 0, 6, 0);
        tracker.Add(new ConnectionPacket(t + 9, Client, Server, ConnectionKey.Udp, 40000, 53, 0, 0, 0, 0, 30, 78, Encapsulation.None, Dns: true));
        tracker.Add(new ConnectionPacket(t + 10, Server, Client, ConnectionKey.Udp, 53, 40000, 0, 0, 0, 0, 60, 108, Encapsulation.None, Dns: true));
        tracker.Add(new ConnectionPacket(t + 11, Client, Server, ConnectionKey.Icmpv6, 128, 0, 0, 0, 0, 0, 8, 56, Encapsulation.None, Dns: false));
        tracker.Add(new ConnectionPacket(t + 12, Server, Client, ConnectionKey.Icmpv6, 1, 4, 0, 0, 0, 0, 48, 96, Encapsulation.None, Dns: false));
        // The same 5-tuple again after the first session closed: a second fragment of the key, covered by the first.
        Tcp(tracker, t + (10 * Second), Client, 50000, Server, 443, 0x02, 7000, 0, 0);
        var written = tracker.Drain(t + (10 * Second));
        Assert.Contains(written, f => f.Covered);

        var file = Path.Combine(_folder, "fragments.parquet");
        using (var writer = ConnectionPartialWriter.Open(file, keyId: "key-1"))
        {
            writer.Add(written);
            writer.Complete();
        }

        using var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        Assert.Null(ConnectionFragmentFile.Problem(db, file));
        var read = ConnectionFragmentFile.ReadAll(db, file);
        Assert.Equal(written.Count, read.Count);
        foreach (var (w, r) in written.OrderBy(f => f.FirstTimestampNs).ThenBy(f => f.Covered).Zip(read.OrderBy(f => f.FirstTimestampNs).ThenBy(f => f.Covered)))
        {
            Assert.Equal(w.ToConnection(), r.ToConnection());
            Assert.Equal((w.ProbeId, w.Source, w.Key, w.HeadOpen, w.Covered), (r.ProbeId, r.Source, r.Key, r.HeadOpen, r.Covered));
            Assert.Equal(w.Events, r.Events);
            Assert.Equal(w.State.A, r.State.A);
            Assert.Equal(w.State.B, r.State.B);
            Assert.Equal(
                (w.State.LastTimestampNs, w.State.LastPacketNs, w.State.OrigIsA, w.State.Dns, w.State.AttemptStartNs, w.State.CompletedNs, w.State.HistorySeen, w.State.History),
                (r.State.LastTimestampNs, r.State.LastPacketNs, r.State.OrigIsA, r.State.Dns, r.State.AttemptStartNs, r.State.CompletedNs, r.State.HistorySeen, r.State.History));
        }

        // The dataset's row columns are there for SQL, as the merge reads them, and the metadata names the format and key.
        var uids = read.Select(f => f.ToConnection().Uid).Order(StringComparer.Ordinal).ToList();
        using var command = db.CreateCommand();
        command.CommandText = $"SELECT uid FROM read_parquet('{file}') ORDER BY uid COLLATE C";
        using (var reader = command.ExecuteReader())
        {
            var fromSql = new List<string>();
            while (reader.Read())
                fromSql.Add(reader.GetString(0));
            Assert.Equal(uids, fromSql.Order(StringComparer.Ordinal));
        }
        command.CommandText = $"SELECT decode(value) FROM parquet_kv_metadata('{file}') WHERE decode(key) = 'survey6.anonymisation_key_id'";
        Assert.Equal("key-1", command.ExecuteScalar());
    }

    [Fact]
    public void A_file_that_is_not_a_fragments_file_is_named_as_such()
    {
        using var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        var garbage = Path.Combine(_folder, "garbage.parquet");
        File.WriteAllText(garbage, "not Parquet");
        Assert.StartsWith("it cannot be read as Parquet", ConnectionFragmentFile.Problem(db, garbage), StringComparison.Ordinal);

        var other = Path.Combine(_folder, "other.parquet");
        using (var command = db.CreateCommand())
        {
            command.CommandText = $"COPY (SELECT 1 AS x) TO '{other}' (FORMAT parquet)";
            command.ExecuteNonQuery();
        }
        Assert.Equal("it has no fragment format in its metadata", ConnectionFragmentFile.Problem(db, other));
    }

    [Fact]
    public void A_file_abandoned_halfway_leaves_nothing_in_the_next_one()
    {
        // Writers keep their buffers from one file to the next: rows buffered for a file that was never completed (a
        // damaged capture) must not reach the next file.
        long t = 1_700_000_000 * Second;
        var abandoned = Fragments("probe-a", t, count: 50);
        var first = ConnectionPartialWriter.OpenReusingBuffers(Path.Combine(_folder, "abandoned.parquet"), keyId: null);
        first.Add(abandoned);
        first.Dispose();

        var file = Path.Combine(_folder, "next.parquet");
        var written = Fragments("probe-b", t, count: 3);
        var next = ConnectionPartialWriter.OpenReusingBuffers(file, keyId: null);
        next.Add(written);
        next.Complete();

        using var db = new DuckDBConnection("DataSource=:memory:");
        db.Open();
        var read = ConnectionFragmentFile.ReadAll(db, file);
        Assert.Equal(3, read.Count);
        Assert.All(read, f => Assert.Equal("probe-b", f.ProbeId));
        foreach (var (w, r) in written.OrderBy(f => f.FirstTimestampNs).Zip(read.OrderBy(f => f.FirstTimestampNs)))
        {
            Assert.Equal(w.ToConnection(), r.ToConnection());
            Assert.Equal(w.Events, r.Events);
        }
    }

    /// <summary><paramref name="count"/> one-packet UDP connections of <paramref name="probeId"/>, all head-open (kept for stitching).</summary>
    private static IReadOnlyList<ConnectionFragment> Fragments(string probeId, long t, int count)
    {
        var tracker = new ConnectionTracker(probeId, "capture-" + probeId, t, new ConnectionOptions());
        for (int i = 0; i < count; i++)
            tracker.Add(new ConnectionPacket(t + i, Client, Server, ConnectionKey.Udp, (ushort)(40000 + i), 53, 0, 0, 0, 0, 30, 78, Encapsulation.None, Dns: true));
        return tracker.Drain(t + count);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static void Tcp(ConnectionTracker tracker, long t, Ipv6Address from, ushort fromPort, Ipv6Address to, ushort toPort, ushort flags, uint seq, uint ack, uint data) =>
        tracker.Add(new ConnectionPacket(t, from, to, ConnectionKey.Tcp, fromPort, toPort, flags, seq, ack, 65535, data, 60 + data, Encapsulation.None, Dns: false));
}

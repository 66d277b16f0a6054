using DuckDB.NET.Data;
using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Connections;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Tests.Connections;

/// <summary>
/// The stitch property: a packet sequence split at random points into captures, each tracked alone, its fragments
/// stored in a fragments file and read back, shuffled and stitched, gives exactly the connections of one tracker over
/// the whole sequence.
/// </summary>
public sealed class StitchPropertyTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("survey6-stitch-").FullName;
    private readonly DuckDBConnection _db = new("DataSource=:memory:");
    private int _files;

    // Short timeouts so that random gaps exercise idle splits, lingering closes and unanswered SYNs.
    private static readonly ConnectionOptions Options = new()
    {
        TcpIdleTimeout = TimeSpan.FromSeconds(10),
        UdpIdleTimeout = TimeSpan.FromSeconds(5),
        IcmpIdleTimeout = TimeSpan.FromSeconds(5),
        TcpCloseDelay = TimeSpan.FromSeconds(1),
        TcpAttemptDelay = TimeSpan.FromSeconds(2),
    };

    private static readonly long[] Steps = [1_000_000, 300_000_000, 1_500_000_000, 3_000_000_000, 6_000_000_000, 12_000_000_000];
    private static readonly string[] TcpFlags = ["S", "SA", "A", "A", "PA", "PA", "PA", "FA", "F", "R", "RA", "SF", "FR", "S"];

    [Fact]
    public void Stitched_fragments_equal_the_unsplit_result()
    {
        int compared = 0;
        int joined = 0;
        for (int seed = 1; seed <= 400; seed++)
        {
            var random = new Random(seed);
            var packets = Generate(random, random.Next(5, 120));
            var whole = Track([packets], shuffle: null, throughFile: false);

            var pieces = Split(random, packets);

            var stitched = Track(pieces, shuffle: random);
            Assert.True(whole.SequenceEqual(stitched), $"seed {seed}: unsplit\n{string.Join('\n', whole)}\nstitched\n{string.Join('\n', stitched)}");
            compared += whole.Count;
            joined += whole.Count(c => c.OrigPkts + c.RespPkts > 1);
        }

        Assert.True(compared > 2000 && joined > 500, $"only {compared} connections, {joined} of several packets");
    }

    /// <summary>
    /// As the pipeline does it: each capture's tracker finishes idle connections as it goes (<c>Expire</c>) and marks
    /// the tail-open ones at its end; at the merge only the fragments that may meet another capture's (by
    /// <c>ConnectionPartials.Neighbours</c>) are stitched, the rest taken as they are. The result is still exactly one
    /// tracker's over the whole sequence.
    /// </summary>
    [Fact]
    public void Stitching_only_the_edges_of_streamed_captures_equals_the_unsplit_result()
    {
        int final = 0;
        int edges = 0;
        for (int seed = 1; seed <= 400; seed++)
        {
            var random = new Random(seed);
            var packets = Generate(random, random.Next(5, 120));
            var whole = Track([packets], shuffle: null, throughFile: false);

            var pieces = Split(random, packets);

            var neighbours = Survey6.Aggregator.Aggregate.ConnectionPartials.Neighbours(
                pieces.Select((p, i) => ($"capture-{i}", "probe", (long?)p[0].TimestampNs, (long?)p[^1].TimestampNs)), Options);
            var result = new List<Connection>();
            var toStitch = new List<ConnectionFragment>();
            for (int i = 0; i < pieces.Count; i++)
            {
                var source = $"capture-{i}";
                var tracker = new ConnectionTracker("probe", source, pieces[i][0].TimestampNs, Options);
                var fragments = new List<ConnectionFragment>();
                int every = random.Next(1, 8);
                for (int k = 0; k < pieces[i].Count; k++)
                {
                    tracker.Add(pieces[i][k]);
                    if (k % every == 0)
                    {
                        tracker.Expire(pieces[i][k].TimestampNs);
                        fragments.AddRange(tracker.TakeFinished());
                    }
                }

                fragments.AddRange(tracker.Drain(pieces[i][^1].TimestampNs));
                var (earlier, later) = neighbours.GetValueOrDefault(source);
                var edgeFragments = new List<ConnectionFragment>();
                foreach (var f in fragments)
                {
                    if ((earlier && (f.HeadOpen || f.Covered)) || (later && f.TailOpen))
                    {
                        edgeFragments.Add(f);
                        edges++;
                    }
                    else
                    {
                        result.Add(f.ToConnection());
                        final++;
                    }
                }

                toStitch.AddRange(edgeFragments);
            }

            toStitch = ThroughFile(toStitch);

            result.AddRange(new ConnectionStitcher(Options).Stitch(toStitch));
            var merged = result.OrderBy(c => c.TsNs).ThenBy(c => c.Uid, StringComparer.Ordinal).ToList();
            Assert.True(whole.SequenceEqual(merged), $"seed {seed}: unsplit\n{string.Join('\n', whole)}\nmerged\n{string.Join('\n', merged)}");
        }

        Assert.True(final > 500 && edges > 500, $"only {final} final and {edges} edge fragments");
    }

    /// <summary>The fragments written to a fragments file and read back as the merge reads them.</summary>
    private List<ConnectionFragment> ThroughFile(IReadOnlyList<ConnectionFragment> fragments)
    {
        if (_db.State != System.Data.ConnectionState.Open)
        {
            _db.Open();
        }

        var file = Path.Combine(_folder, $"{_files++}.parquet");
        using (var writer = ConnectionPartialWriter.Open(file, keyId: null))
        {
            writer.Add(fragments);
            writer.Complete();
        }

        var read = ConnectionFragmentFile.ReadAll(_db, file);
        Assert.Equal(fragments.Count, read.Count);
        File.Delete(file);
        return read;
    }

    public void Dispose()
    {
        _db.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>The sequence cut at one to four random points: the captures of one probe, in order.</summary>
    private static List<List<ConnectionPacket>> Split(Random random, List<ConnectionPacket> packets)
    {
        var cuts = Enumerable.Range(0, random.Next(1, 5)).Select(_ => random.Next(1, packets.Count)).Distinct().Order().ToList();
        var pieces = new List<List<ConnectionPacket>>();
        int from = 0;
        foreach (int cut in cuts.Append(packets.Count))
        {
            pieces.Add(packets.GetRange(from, cut - from));
            from = cut;
        }

        return pieces;
    }

    private List<Connection> Track(List<List<ConnectionPacket>> pieces, Random? shuffle, bool throughFile = true)
    {
        var fragments = new List<ConnectionFragment>();
        var taken = new List<Connection>();
        for (int i = 0; i < pieces.Count; i++)
        {
            if (pieces[i].Count == 0)
            {
                continue;
            }

            var tracker = new ConnectionTracker("probe", $"capture-{i}", pieces[i][0].TimestampNs, Options);
            foreach (var p in pieces[i])
            {
                tracker.Add(p);
            }

            // Through a fragments file, as the pipeline stores them between the parse and the merge. A fragment that is
            // neither open at an end nor covered (a later fragment of its key in the same capture came after it) carries no
            // state there and can join nothing: it is taken as it is, as the merge takes it.
            var drained = tracker.Drain();
            fragments.AddRange(drained.Where(f => f.HeadOpen || f.Covered || f.TailOpen));
            taken.AddRange(drained.Where(f => !(f.HeadOpen || f.Covered || f.TailOpen)).Select(f => f.ToConnection()));
        }

        if (throughFile)
        {
            fragments = ThroughFile(fragments);
        }

        if (shuffle is not null)
        {
            shuffle.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(fragments));
        }

        return [.. new ConnectionStitcher(Options).Stitch(fragments).Concat(taken).OrderBy(c => c.TsNs).ThenBy(c => c.Uid, StringComparer.Ordinal)];
    }

    private static List<ConnectionPacket> Generate(Random random, int count)
    {
        var hosts = new[] { Ipv6Address.Parse("2001:db8::1"), Ipv6Address.Parse("2001:db8::2"), Ipv6Address.Parse("fe80::1") };
        var seq = new uint[2, 2];
        seq[0, 0] = (uint)random.NextInt64(0, 1L << 32);
        seq[0, 1] = (uint)random.NextInt64(0, 1L << 32);
        seq[1, 0] = 0xFFFF_FFF0;
        seq[1, 1] = 100;
        long t = 1_700_000_000_000_000_000 + random.NextInt64(0, 1_000_000_000);
        var packets = new List<ConnectionPacket>(count);
        for (int i = 0; i < count; i++)
        {
            t += Steps[random.Next(Steps.Length)] / (random.Next(3) + 1);
            bool forward = random.Next(3) != 0;
            var a = hosts[0];
            var b = hosts[random.Next(1, 3)];
            var (src, dst) = forward ? (a, b) : (b, a);
            switch (random.Next(6))
            {
                case < 4:
                {
                    int conn = random.Next(2);
                    int side = forward ? 0 : 1;
                    string flags = TcpFlags[random.Next(TcpFlags.Length)];
                    ushort bits = 0;
                    foreach (char f in flags)
                    {
                        bits |= f switch { 'F' => (ushort)0x01, 'S' => (ushort)0x02, 'R' => (ushort)0x04, 'P' => (ushort)0x08, _ => (ushort)0x10 };
                    }

                    uint data = flags == "PA" ? (uint)random.Next(0, 1400) : 0;
                    uint s = seq[conn, side];
                    if (random.Next(8) == 0)
                    {
                        s -= (uint)random.Next(0, 3000); // a retransmission, or older
                    }
                    else if (random.Next(10) == 0)
                    {
                        s += (uint)random.Next(1, 5000); // a segment the monitor missed
                    }

                    seq[conn, side] = s + data + ((bits & 0x03) != 0 ? 1u : 0);
                    uint ack = (bits & 0x10) != 0 ? seq[conn, 1 - side] + (uint)(random.Next(4) == 0 ? random.Next(0, 2000) : 0) : 0;
                    ushort window = (ushort)(random.Next(6) == 0 ? 0 : 65000);
                    ushort clientPort = (ushort)(40000 + conn);
                    packets.Add(new ConnectionPacket(t, src, dst, ConnectionKey.Tcp, forward ? clientPort : (ushort)443, forward ? (ushort)443 : clientPort,
                        bits, s, ack, window, data, 60 + data, Encapsulation.Native, Dns: false));
                    break;
                }

                case 4:
                {
                    uint data = (uint)random.Next(0, 600);
                    packets.Add(new ConnectionPacket(t, src, dst, ConnectionKey.Udp, forward ? (ushort)5353 : (ushort)53, forward ? (ushort)53 : (ushort)5353,
                        0, 0, 0, 0, data, 48 + data, Encapsulation.Native, Dns: random.Next(2) == 0));
                    break;
                }

                default:
                {
                    byte type = random.Next(3) switch { 0 => (byte)128, 1 => (byte)129, _ => (byte)1 };
                    packets.Add(new ConnectionPacket(t, src, dst, ConnectionKey.Icmpv6, type, 0, 0, 0, 0, 0, 56, 104, Encapsulation.Native, Dns: false));
                    break;
                }
            }
        }

        return packets;
    }
}

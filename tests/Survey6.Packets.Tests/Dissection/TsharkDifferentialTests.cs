using System.Text;
using Survey6.Cli;
using Survey6.Packets.Dissection;
using Survey6.Packets.Text;
using Xunit.Abstractions;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>
/// Runs <c>survey6 pcap records --format tshark</c> over every shared capture and compares it cell by cell
/// with tshark 4.0.17's output (the no-reassembly oracle where one exists, since survey6 does not reassemble).
/// </summary>
public class TsharkDifferentialTests(ITestOutputHelper output)
{
    /// <summary>Cells where survey6 deliberately differs from tshark, one reason each: (capture, frame, field).</summary>
    private static readonly Dictionary<(string Capture, int Frame, string Field), string> AllowedDifferences = new()
    {
    };

    public static TheoryData<string> Captures() => new(TestData.AllCaptures().Select(TestData.RelativePath));

    [Theory]
    [MemberData(nameof(Captures))]
    public void Output_matches_tshark_cell_by_cell(string capture)
    {
        var (compared, mismatches) = Compare(capture);
        Assert.True(compared > 0 || File.ReadAllLines(Oracle(capture)).Length == 1);
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} cells differ:\n" + string.Join('\n', mismatches.Take(40)));
    }

    [Fact]
    public void Agreement_over_the_whole_corpus()
    {
        long compared = 0, unexpected = 0, allowed = 0;
        foreach (var capture in TestData.AllCaptures().Select(TestData.RelativePath))
        {
            var (c, m) = Compare(capture, countAllowed: a => allowed += a);
            compared += c;
            unexpected += m.Count;
        }

        output.WriteLine($"cells equal: {compared - unexpected - allowed} / {compared}; allowed differences: {allowed}");
        Assert.Equal(0, unexpected);
        Assert.True(compared > 10_000, "the corpus should give thousands of cells");
    }

    /// <summary>
    /// The oracle made with <c>-o teredo.heuristic_teredo:TRUE</c>: tshark then finds Teredo between a client and
    /// a relay on ports other than 3544 (29 IPv6 frames instead of 4). survey6's Teredo heuristic must agree
    /// frame by frame and cell by cell.
    /// </summary>
    [Fact]
    public void Teredo_on_any_port_matches_tshark_with_its_teredo_heuristic_on()
    {
        const string Capture = "zeek/tunnels/Teredo.pcap";
        var ours = TsharkRows.Of(TestData.Capture(Capture), DissectorOptions.TeredoOnAnyPort);
        var theirs = File.ReadAllLines(Path.Combine(TestData.OracleFolder, Capture + ".teredo-heuristic.tsv")).Where(l => l.Length > 0).ToArray();
        var mismatches = Mismatches(Capture, ours, theirs, out long compared, out _);
        Assert.True(mismatches.Count == 0, $"{mismatches.Count} cells differ:\n" + string.Join('\n', mismatches.Take(40)));
        Assert.Equal(79 * TsharkFieldWriter.Fields.Length, compared);

        // The heuristic is what makes the difference: 25 frames more than the port-only default has IPv6.
        int Ipv6Rows(string[] rows) => rows.Skip(1).Count(row => row.Split('\t')[4].Length > 0);
        Assert.Equal(29, Ipv6Rows(ours));
        Assert.Equal(4, Ipv6Rows(TsharkRows.Of(TestData.Capture(Capture), TsharkFieldWriter.Options)));
    }

    private static string Oracle(string capture)
    {
        var nodefrag = Path.Combine(TestData.OracleFolder, capture + ".nodefrag.tsv");
        return File.Exists(nodefrag) ? nodefrag : Path.Combine(TestData.OracleFolder, capture + ".tsv");
    }

    private static (long Compared, List<string> Mismatches) Compare(string capture, Action<long>? countAllowed = null)
    {
        using var stdout = new MemoryStream();
        using var stderr = new StringWriter();
        PcapCommands.Records(TestData.Capture(capture), "tshark", stdout, stderr);
        var ours = Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var theirs = File.ReadAllLines(Oracle(capture)).Where(l => l.Length > 0).ToArray();
        var mismatches = Mismatches(capture, ours, theirs, out long compared, out long allowed);
        countAllowed?.Invoke(allowed);
        return (compared, mismatches);
    }

    private static List<string> Mismatches(string capture, string[] ours, string[] theirs, out long compared, out long allowed)
    {
        var mismatches = new List<string>();
        if (ours.Length != theirs.Length)
        {
            mismatches.Add($"{capture}: {ours.Length - 1} rows, tshark has {theirs.Length - 1}");
        }

        compared = 0;
        allowed = 0;
        var header = theirs[0].Split('\t');
        Assert.Equal(string.Join('\t', TsharkFieldWriter.Fields), theirs[0]);
        for (int row = 0; row < Math.Min(ours.Length, theirs.Length); row++)
        {
            var a = ours[row].Split('\t');
            var b = theirs[row].Split('\t');
            for (int col = 0; col < header.Length; col++)
            {
                compared++;
                var mine = col < a.Length ? a[col] : "<missing>";
                if (mine == b[col])
                {
                    continue;
                }

                if (AllowedDifferences.ContainsKey((capture, row, header[col])))
                {
                    allowed++;
                    continue;
                }

                mismatches.Add($"{capture} frame {row} {header[col]}: survey6 '{mine}' tshark '{b[col]}'");
            }
        }

        return mismatches;
    }
}

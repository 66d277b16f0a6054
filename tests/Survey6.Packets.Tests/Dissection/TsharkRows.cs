using System.Text;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Packets.Text;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>
/// tshark-format rows of a capture dissected with chosen options: what <c>pcap records --format tshark</c>
/// would print if tshark's optional preferences (the Teredo heuristic) were on.
/// </summary>
internal static class TsharkRows
{
    /// <summary>The header line, then one line per frame.</summary>
    public static string[] Of(string capture, DissectorOptions options)
    {
        using var output = new MemoryStream();
        using (var lines = new Utf8LineWriter(output))
        using (var reader = CaptureReader.Open(capture))
        {
            TsharkFieldWriter.WriteHeader(lines);
            var record = new PacketRecord();
            long number = 0;
            while (reader.TryRead(out var frame))
            {
                FrameDissection.Dissect(frame, ++number, ref record, options);
                TsharkFieldWriter.WriteRow(lines, record);
            }

            Assert.Null(reader.Error);
        }

        return Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}

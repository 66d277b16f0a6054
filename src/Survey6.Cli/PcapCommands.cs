using System.CommandLine;
using System.Text.Json;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using Survey6.Packets.Text;

namespace Survey6.Cli;

/// <summary><c>survey6 pcap ...</c>: read and dissect capture files.</summary>
public static class PcapCommands
{
    /// <summary>Exit status when a file could not be read to its end.</summary>
    public const int ExitDamagedInput = 1;

    public static Command Create()
    {
        var pcap = new Command("pcap", "Read capture files (pcap, pcapng) and dissect their IPv6 traffic");
        pcap.Subcommands.Add(CreateStats());
        pcap.Subcommands.Add(CreateRecords());
        return pcap;
    }

    private static Command CreateStats()
    {
        var files = new Argument<string[]>("FILE") { Description = "Capture files (pcap or pcapng)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("stats", "Print a JSON summary of one or more capture files") { files };
        command.SetAction(parse => Stats(parse.GetValue(files)!, Console.OpenStandardOutput(), Console.Error));
        return command;
    }

    private static Command CreateRecords()
    {
        var file = new Argument<string>("FILE") { Description = "Capture file (pcap or pcapng)" };
        var format = new Option<string>("--format")
        {
            Description = "tshark: the same output as tshark -T fields with its default preferences (Teredo on port 3544 only) for survey6's reference fields; tsv or jsonl: survey6's full record (Teredo on any port)",
            DefaultValueFactory = _ => "tsv",
        };
        format.AcceptOnlyFromAmong("tshark", "tsv", "jsonl");
        var command = new Command("records", "Print one record per frame") { file, format };
        command.SetAction(parse => Records(parse.GetValue(file)!, parse.GetValue(format)!, Console.OpenStandardOutput(), Console.Error));
        return command;
    }

    public static int Stats(IReadOnlyList<string> files, Stream output, TextWriter error)
    {
        var statistics = new CaptureStatistics();
        var record = new PacketRecord();
        int status = 0;
        foreach (var path in files)
        {
            statistics.AddFile();
            if (!TryOpen(path, error, out var reader))
            {
                statistics.AddError(path, new CaptureError(0, "cannot open"));
                status = ExitDamagedInput;
                continue;
            }

            using (reader)
            {
                status |= ReadAll(reader, path, error, ref record, (in PacketRecord r) => statistics.Add(r), statistics);
            }
        }

        using (var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true }))
        {
            statistics.WriteJson(json, files);
        }

        output.WriteByte((byte)'\n');
        output.Flush();
        return status;
    }

    public static int Records(string path, string format, Stream output, TextWriter error)
    {
        if (!TryOpen(path, error, out var reader))
        {
            return ExitDamagedInput;
        }

        using (reader)
        using (var lines = new Utf8LineWriter(output))
        {
            var record = new PacketRecord();
            switch (format)
            {
                case "tshark":
                    TsharkFieldWriter.WriteHeader(lines);
                    return ReadAll(reader, path, error, ref record, (in PacketRecord r) => TsharkFieldWriter.WriteRow(lines, r), null, lines, TsharkFieldWriter.Options);
                case "jsonl":
                    using (var jsonl = new JsonLinesRecordWriter(lines))
                    {
                        return ReadAll(reader, path, error, ref record, (in PacketRecord r) => jsonl.Write(r), null, lines);
                    }

                default:
                    var tsv = new TsvRecordWriter(lines);
                    tsv.WriteHeader();
                    return ReadAll(reader, path, error, ref record, (in PacketRecord r) => tsv.Write(r), null, lines);
            }
        }
    }

    private delegate void RecordSink(in PacketRecord record);

    private static bool TryOpen(string path, TextWriter error, out CaptureReader reader)
    {
        try
        {
            reader = CaptureReader.Open(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"survey6: {path}: cannot open: {e.Message}");
            reader = null!;
            return false;
        }
    }

    /// <summary>Feeds every frame of a file to the sink; reports damage as one line on stderr after the records before it.</summary>
    private static int ReadAll(CaptureReader reader, string path, TextWriter error, ref PacketRecord record, RecordSink sink, CaptureStatistics? statistics, Utf8LineWriter? flushBeforeError = null, DissectorOptions options = DissectorOptions.Default)
    {
        long number = 0;
        try
        {
            while (reader.TryRead(out var frame))
            {
                FrameDissection.Dissect(frame, ++number, ref record, options);
                sink(record);
            }
        }
        catch (IOException e)
        {
            flushBeforeError?.Flush();
            error.WriteLine($"survey6: {path}: read error after frame {number}: {e.Message}");
            return ExitDamagedInput;
        }

        if (reader.Error is { } damage)
        {
            flushBeforeError?.Flush();
            statistics?.AddError(path, damage);
            error.WriteLine($"survey6: {path}: offset {damage.Offset}: {damage.Message}");
            return ExitDamagedInput;
        }

        return 0;
    }
}

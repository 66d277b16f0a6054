using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Survey6.Cli;

namespace Survey6.Packets.Tests.Cli;

/// <summary>What a user of <c>survey6 pcap</c> sees: output, the one-line error, and the exit status.</summary>
public class PcapCommandTests
{
    private static (int Status, string Output, string Error) Run(Func<Stream, TextWriter, int> command)
    {
        using var output = new MemoryStream();
        using var error = new StringWriter();
        int status = command(output, error);
        return (status, Encoding.UTF8.GetString(output.ToArray()), error.ToString());
    }

    [Fact]
    public void Stats_summarises_a_capture_as_json()
    {
        var (status, output, error) = Run((o, e) => PcapCommands.Stats([TestData.Capture("zeek/tunnels/Teredo.pcap")], o, e));
        Assert.Equal(0, status);
        Assert.Equal(string.Empty, error);
        using var json = JsonDocument.Parse(output);
        var root = json.RootElement;
        Assert.Equal(78, root.GetProperty("frames").GetInt64());
        Assert.Equal(29, root.GetProperty("ipv6_frames").GetInt64()); // Teredo on any port: 4 on 3544, 25 between client and relay
        Assert.Equal(49, root.GetProperty("frames_without_ipv6").GetInt64());
        Assert.Equal(29, root.GetProperty("encapsulation").GetProperty("teredo").GetInt64());
        Assert.True(root.GetProperty("icmpv6_type").GetProperty("router-advertisement(134)").GetInt64() >= 1);
        Assert.True(root.GetProperty("dns").GetProperty("messages").GetInt64() > 0);
    }

    [Fact]
    public void Records_find_teredo_on_any_port_but_the_tshark_format_keeps_tshark_defaults()
    {
        var path = TestData.Capture("zeek/tunnels/Teredo.pcap");
        var (status, jsonl, _) = Run((o, e) => PcapCommands.Records(path, "jsonl", o, e));
        Assert.Equal(0, status);
        var teredo = jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Where(record => record.TryGetProperty("encapsulation", out var e) && e.GetString() == "teredo")
            .ToList();
        Assert.Equal(29, teredo.Count);
        Assert.Contains(teredo, record => record.GetProperty("flow_src").GetString() == "2001:0:4137:9e50:8000:f12a:b9c8:2815");

        var (_, tshark, _) = Run((o, e) => PcapCommands.Records(path, "tshark", o, e));
        var ipv6Rows = tshark.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Count(row => row.Split('\t')[4].Length > 0);
        Assert.Equal(4, ipv6Rows);
    }

    [Fact]
    public void Stats_over_several_files_adds_them_up()
    {
        string[] files = [TestData.Capture("zeek/ftp/ipv6.pcap"), TestData.Capture("tcpdump/babel.pcap")];
        var (status, output, _) = Run((o, e) => PcapCommands.Stats(files, o, e));
        Assert.Equal(0, status);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(136 + 25, json.RootElement.GetProperty("frames").GetInt64());
        Assert.Equal(2, json.RootElement.GetProperty("link_types").EnumerateObject().Count());
    }

    [Fact]
    public void A_file_cut_short_prints_its_records_then_one_error_line()
    {
        var path = TestData.Capture("dpkt/examples/data/truncated_dns_2.pcap");
        var (status, output, error) = Run((o, e) => PcapCommands.Records(path, "tshark", o, e));
        Assert.NotEqual(0, status);
        Assert.Equal(2, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header + the one complete frame
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(path, line);
        Assert.Contains("offset 240", line);
        Assert.Contains("cut short", line);
    }

    [Fact]
    public void A_file_that_is_not_a_capture_is_named_with_its_problem()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, "this is not a capture file at all");
            var (status, output, error) = Run((o, e) => PcapCommands.Records(path, "jsonl", o, e));
            Assert.NotEqual(0, status);
            Assert.Equal(string.Empty, output);
            Assert.Contains("not a pcap or pcapng file", error);
            Assert.DoesNotContain("   at ", error);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_missing_file_is_reported_without_a_stack_trace()
    {
        var (status, _, error) = Run((o, e) => PcapCommands.Records("/nonexistent/x.pcap", "tsv", o, e));
        Assert.NotEqual(0, status);
        Assert.Contains("/nonexistent/x.pcap: cannot open", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void Tsv_and_jsonl_carry_the_same_records()
    {
        var path = TestData.Capture("zeek/tunnels/Teredo.pcap");
        var tsv = Run((o, e) => PcapCommands.Records(path, "tsv", o, e)).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var jsonl = Run((o, e) => PcapCommands.Records(path, "jsonl", o, e)).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(tsv.Length - 1, jsonl.Length);
        var names = tsv[0].Split('\t');
        for (int i = 0; i < jsonl.Length; i++)
        {
            var cells = tsv[i + 1].Split('\t');
            using var json = JsonDocument.Parse(jsonl[i]);
            for (int c = 0; c < names.Length; c++)
            {
                bool has = json.RootElement.TryGetProperty(names[c], out var value);
                Assert.Equal(cells[c].Length > 0, has);
                if (has && value.ValueKind == JsonValueKind.String)
                {
                    Assert.Equal(cells[c], value.GetString());
                }
            }
        }
    }

    [Fact]
    public async Task The_program_exits_non_zero_with_a_single_line_on_stderr()
    {
        var program = Path.Combine(AppContext.BaseDirectory, "survey6.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { program, "pcap", "stats", TestData.Capture("dpkt/examples/data/truncated_dns_2.pcap") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(PcapCommands.ExitDamagedInput, process.ExitCode);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var json = JsonDocument.Parse(await stdout);
        Assert.Equal(1, json.RootElement.GetProperty("frames").GetInt64());
    }
}

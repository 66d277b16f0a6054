using System.Text;
using Survey6.Cli;
using Survey6.Packets.Dissection;
using Survey6.Packets.Tests.Capture;
using Survey6.Packets.Text;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>
/// Compares <c>--format tshark</c> with the installed tshark on frames the corpus lacks: hand-built
/// layered packets cut at every byte (what tshark reports for a partly captured header is subtle),
/// and the shipped generated sample. tshark runs without IP reassembly, as survey6 does none.
/// </summary>
public class LiveTsharkDifferentialTests
{
    private static readonly string[] NoReassembly = ["-o", "ipv6.defragment:FALSE", "-o", "ip.defragment:FALSE"];

    private static byte[][] LayeredFrames()
    {
        var ra = new byte[12 + 32];
        ra[12] = 3;
        ra[13] = 4;
        ra[14] = 64;
        var quoted = Ipv6(17, Udp(4000, 53, DnsQuery("quoted.example", 28)), source: Destination, destination: Source);
        return
        [
            Ethernet(0x86DD, Ipv6(6, Tcp(50000, 443, 0x018, [1, 2, 3]), trafficClass: 0x2E, flowLabel: 0x12345)),
            Ethernet(0x86DD, Ipv6(17, Udp(40000, 53, DnsQuery("www.example.com", 28))), 0x0064),
            Ethernet(0x86DD, Ipv6(17, Udp(53, 40000, DnsAaaaResponse("www.example.com", 0, Source, Destination)))),
            Ethernet(0x86DD, Ipv6(0, Extension(60, Extension(43, Extension(17, Udp(1, 2, [9]), units: 2, routingType: 4))))),
            Ethernet(0x86DD, Ipv6(44, Fragment(17, Udp(5353, 5353, DnsQuery("printer.local", 12)), 0, true, 77))),
            Ethernet(0x86DD, Ipv6(58, Icmpv6(134, 0, ra))),
            Ethernet(0x86DD, Ipv6(58, Icmpv6(1, 4, [0, 0, 0, 0, .. quoted]))),
            Ethernet(0x0800, Ipv4(41, Ipv6(58, Icmpv6(128, 0, [0, 1, 0, 1])))),
            Ethernet(0x86DD, Ipv6(41, Ipv6(6, Tcp(80, 8080, 0x002)))),
            Ethernet(0x0800, Ipv4(17, Udp(40000, 3544, [0, 0, 0x63, 0xBF, 0x3F, 0xFF, 0xFD, 0xD2, .. Ipv6(58, Icmpv6(133, 0, new byte[4]))]))),
            Ethernet(0x0800, Ipv4(47, [0x30, 0x01, 0x88, 0x0B, 0, 8, 0, 1, 0, 0, 0, 1, 0xFF, 0x03, 0x00, 0x57, .. Ipv6(17, Udp(7, 8, [1]))])),
            Ethernet(0x0800, Ipv4(17, Udp(1701, 1701, [0, 2, 0, 1, 0, 2, 0xFF, 0x03, 0x00, 0x57, .. Ipv6(6, Tcp(22, 2222, 0x010))]))),
            Ethernet(0x8864, [0x11, 0, 0, 1, 0, 50, 0x00, 0x57, .. Ipv6(58, Icmpv6(135, 0, new byte[20]))]),
            Ethernet(0x86DD, Ipv6(50, [0, 0, 1, 0, 0, 0, 0, 1, 9, 9, 9, 9])),
            Ethernet(0x86DD, Ipv6(51, [6, 4, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 1, .. new byte[12], .. Tcp(443, 1000, 0x011)])),
            Ethernet(0x86DD, Ipv6(6, Tcp(53000, 53, 0x018, [0, 29, .. DnsQuery("tcp.example.net", 28)]))),
            Ethernet(0x0800, Ipv4(1, [3, 3, 0, 0, 0, 0, 0, 0, .. Ipv4(17, Udp(53, 33000, DnsAaaaResponse("icmp.example", 3)))])),
        ];
    }

    [Fact]
    public void Every_cut_of_layered_frames_matches_tshark()
    {
        var frames = new List<(byte[] Data, int OriginalLength)>();
        foreach (var frame in LayeredFrames())
        {
            for (int cut = 14; cut <= frame.Length; cut++)
            {
                frames.Add((frame[..cut], frame.Length));
            }
        }

        var path = Path.Combine(Path.GetTempPath(), $"survey6-cuts-{Guid.NewGuid():N}.pcap");
        try
        {
            WritePcap(path, frames);
            AssertSameAsTshark(path, frames.Count);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Teredo between a client and a relay on ports other than 3544, with and without the authentication and
    /// origin-indication headers, and frames the check must refuse, each cut at every byte: the same as tshark
    /// with <c>-o teredo.heuristic_teredo:TRUE</c>. Every packet here has a Teredo address or is a bubble, where
    /// survey6's stricter check and tshark's agree.
    /// </summary>
    [Fact]
    public void Every_cut_of_teredo_on_other_ports_matches_tshark_with_its_teredo_heuristic_on()
    {
        var client = TeredoHeuristicTests.TeredoClient;
        var linkLocal = Survey6.Packets.Addresses.Ipv6Address.Parse("fe80::708d:fe83:4114:a512");
        var origin = TeredoHeuristicTests.OriginIndication;
        var packets = new List<byte[]>
        {
            TeredoHeuristicTests.OverUdp(Ipv6(6, Tcp(1286, 80, 0x018, [1, 2, 3]), source: client), 3797, 32900),
            TeredoHeuristicTests.OverUdp([.. origin, .. Ipv6(58, Icmpv6(129, 0, [0, 1, 0, 1]), source: Destination, destination: client)], 32900, 3797),
            TeredoHeuristicTests.OverUdp([.. TeredoHeuristicTests.Authentication(3, 4), .. Ipv6(17, Udp(4000, 53, DnsQuery("relay.example", 28)), source: client)], 3797, 32900),
            TeredoHeuristicTests.OverUdp([.. TeredoHeuristicTests.Authentication(0, 0), .. origin, .. Ipv6(59, [], source: client, destination: linkLocal)], 3797, 32900),
            TeredoHeuristicTests.OverUdp(Ipv6(59, [], source: linkLocal, destination: linkLocal), 32900, 3797),
            TeredoHeuristicTests.OverUdp([.. Ipv6(59, [], source: client), 0], 3797, 32900), // one byte too many: refused
            TeredoHeuristicTests.OverUdp(Ipv6(6, Tcp(1286, 80, 0x002), source: client, payloadLength: 19), 3797, 32900), // refused
        };
        var frames = new List<(byte[] Data, int OriginalLength)>();
        foreach (var frame in packets)
        {
            for (int cut = 14; cut <= frame.Length; cut++)
            {
                frames.Add((frame[..cut], frame.Length));
            }
        }

        var path = Path.Combine(Path.GetTempPath(), $"survey6-teredo-{Guid.NewGuid():N}.pcap");
        try
        {
            WritePcap(path, frames);
            var rows = AssertSameAsTshark(path, frames.Count, ["-o", "teredo.heuristic_teredo:TRUE"], DissectorOptions.TeredoOnAnyPort);

            // Both sides decapsulate each cut of the first five packets that holds the Teredo headers and a whole
            // IPv6 header (Ethernet, IPv4, UDP and IPv6 make 82 bytes), and no cut of the last two.
            int[] teredoHeaders = [0, 8, 13 + 3 + 4, 13 + 8, 0];
            int expected = teredoHeaders.Select((headers, i) => packets[i].Length - (82 + headers) + 1).Sum();
            Assert.Equal(expected, rows.Skip(1).Count(row => row.Split('\t')[4].Length > 0));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_shipped_sample_matches_tshark()
    {
        var sample = Path.Combine(TestData.RepositoryRoot, "docs", "samples", "ipv6-sample.pcapng");
        AssertSameAsTshark(sample, 3000);
    }

    private static string[] AssertSameAsTshark(string path, int expectedRows, string[]? preferences = null, DissectorOptions? options = null)
    {
        var arguments = new List<string> { "-r", path };
        arguments.AddRange(NoReassembly);
        arguments.AddRange(preferences ?? []);
        arguments.AddRange(["-T", "fields", "-E", "header=y", "-E", "separator=/t", "-E", "occurrence=f"]);
        foreach (var field in TsharkFieldWriter.Fields)
        {
            arguments.AddRange(["-e", field]);
        }

        var tshark = Tool.Run("tshark", [.. arguments]);
        Assert.Equal(0, tshark.ExitCode);
        string[] ours;
        if (options is { } chosen)
        {
            ours = TsharkRows.Of(path, chosen);
        }
        else
        {
            using var output = new MemoryStream();
            Assert.Equal(0, PcapCommands.Records(path, "tshark", output, TextWriter.Null));
            ours = Encoding.UTF8.GetString(output.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }

        var theirs = tshark.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expectedRows + 1, theirs.Length);
        Assert.Equal(theirs.Length, ours.Length);
        var differences = Enumerable.Range(0, ours.Length).Where(i => ours[i] != theirs[i])
            .Select(i => $"tshark: {theirs[i]}\nsurvey6: {ours[i]}").Take(10).ToList();
        Assert.True(differences.Count == 0, string.Join("\n\n", differences));
        return ours;
    }

    private static void WritePcap(string path, List<(byte[] Data, int OriginalLength)> frames)
    {
        using var file = File.Create(path);
        using var writer = new BinaryWriter(file);
        writer.Write(0xA1B2C3D4u);
        writer.Write((ushort)2);
        writer.Write((ushort)4);
        writer.Write(0);
        writer.Write(0u);
        writer.Write(65535u);
        writer.Write(1u);
        uint second = 1_700_000_000;
        foreach (var (data, original) in frames)
        {
            writer.Write(second++);
            writer.Write(123456u);
            writer.Write((uint)data.Length);
            writer.Write((uint)original);
            writer.Write(data);
        }
    }
}

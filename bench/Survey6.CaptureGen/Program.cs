using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using Survey6.CaptureGen;

// Writes the benchmark capture. Same seed and packet count give the same bytes, and a smaller count a prefix.
const string Usage = "usage: survey6-capturegen OUT.pcap [--packets N] [--seed S]";
string? output = null;
long packets = 2_000_000;
ulong seed = 1;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--packets" when i + 1 < args.Length && long.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0:
            packets = n;
            i++;
            break;
        case "--seed" when i + 1 < args.Length && ulong.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var s):
            seed = s;
            i++;
            break;
        case "-h" or "--help":
            Console.WriteLine(Usage);
            return 0;
        default:
            if (output is null && !args[i].StartsWith('-'))
            {
                output = args[i];
                break;
            }

            Console.Error.WriteLine($"unexpected argument '{args[i]}'\n{Usage}");
            return 2;
    }
}

if (output is null)
{
    Console.Error.WriteLine(Usage);
    return 2;
}

var clock = Stopwatch.StartNew();
var frameBuffer = ArrayPool<byte>.Shared.Rent(Frame.Capacity);
var scratchBuffer = ArrayPool<byte>.Shared.Rent(Frame.Capacity);

// Pooled arrays arrive uninitialised; clearing them keeps any byte a builder skips identical between runs.
Array.Clear(frameBuffer);
Array.Clear(scratchBuffer);
TrafficGenerator generator;
long fileBytes, wireBytes, written;
using (var writer = new PcapFileWriter(output, packets))
{
    generator = new TrafficGenerator(new Rng(seed), writer, frameBuffer, scratchBuffer);
    generator.Run();
    fileBytes = writer.FileBytes;
    wireBytes = writer.WireBytes;
    written = writer.Packets;
}

ArrayPool<byte>.Shared.Return(frameBuffer);
ArrayPool<byte>.Shared.Return(scratchBuffer);
var seconds = clock.Elapsed.TotalSeconds;

var inv = CultureInfo.InvariantCulture;
Console.WriteLine(string.Format(inv, "{0}: {1:N0} packets, {2:N0} bytes ({3:N1} MiB), seed {4}, {5:N2} s", output, written, fileBytes, fileBytes / 1048576.0, seed, seconds));
Console.WriteLine(string.Format(inv, "mean frame {0:N1} bytes on the wire", (double)wireBytes / written));
string[] labels =
[
    "IPv6 TCP (tracked connections)", "IPv6 UDP (QUIC, NTP, DHCPv6, other)", "IPv6 DNS query", "IPv6 DNS response", "IPv6 mDNS",
    "ICMPv6 echo", "ICMPv6 neighbour solicitation", "ICMPv6 neighbour advertisement", "ICMPv6 router solicitation",
    "ICMPv6 router advertisement", "MLDv2 report (Hop-by-Hop)", "ICMPv6 redirect", "ICMPv6 error with quote",
    "IPv6 extension-header chains", "IPv6 fragments", "6in4 (IPv4 proto 41)", "Teredo (UDP 3544)",
    "IPv4 TCP", "IPv4 UDP", "IPv4 DNS query", "IPv4 DNS response", "IPv4 ICMP", "ARP",
];
void Row(string label, long count) =>
    Console.WriteLine(string.Format(inv, "  {0,-38} {1,12:N0} {2,7:P2}", label, count, (double)count / written));
for (var k = 0; k < labels.Length; k++)
{
    Row(labels[k], generator.Counts[k]);
}

var v4 = generator.Counts[(int)Kind.Tcp4] + generator.Counts[(int)Kind.Udp4] + generator.Counts[(int)Kind.Dns4Query]
    + generator.Counts[(int)Kind.Dns4Response] + generator.Counts[(int)Kind.Icmp4] + generator.Counts[(int)Kind.Arp];
Console.WriteLine("  ---");
Row("IPv6 (native and tunnelled)", written - v4);
Row("IPv4 and ARP noise", v4);
Row("802.1Q-tagged (any kind above)", generator.Tagged);
Row("  of which 802.1ad + 802.1Q", generator.DoubleTagged);
Row("truncated (caplen < len)", generator.Truncated);
return 0;

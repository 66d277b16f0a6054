using System.Security.Cryptography;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Connections;
using Survey6.Aggregator.Parse;
using Survey6.Aggregator.Sources;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Bench;

/// <summary>
/// Cost of Crypto-PAn anonymisation: per address (IPv6, IPv4, a /64 prefix) and for the parse stage as a whole,
/// with and without it, on the same capture. CPU time of this thread.
/// </summary>
internal static class AnonymisationBench
{
    public static int Run(PendingCapture pending, LakeLayout lake, int frames, int rowGroup, int repeats)
    {
        using var anonymiser = new PrefixPreservingAnonymiser(RandomNumberGenerator.GetBytes(PrefixPreservingAnonymiser.KeyLength));
        const int Addresses = 200_000;
        for (int r = 0; r < repeats; r++)
        {
            var x = Ipv6Address.Parse("2001:db8::1");
            long t0 = ThreadCpu.Nanoseconds();
            for (int i = 0; i < Addresses; i++)
                x = anonymiser.Anonymise(x);
            long t1 = ThreadCpu.Nanoseconds();
            uint v4 = 0xC0000201;
            for (int i = 0; i < Addresses; i++)
                v4 = anonymiser.AnonymiseIpv4(v4);
            long t2 = ThreadCpu.Nanoseconds();
            for (int i = 0; i < Addresses; i++)
                x = anonymiser.AnonymisePrefix(x, 64);
            long t3 = ThreadCpu.Nanoseconds();
            Console.WriteLine($"run {r + 1}: IPv6 address {(t1 - t0) / (double)Addresses:F0} ns, IPv4 address {(t2 - t1) / (double)Addresses:F0} ns, /64 prefix {(t3 - t2) / (double)Addresses:F0} ns");

            foreach (var on in new[] { false, true })
            {
                var parser = new CaptureParser(lake, rowGroup, on ? anonymiser : null, new ConnectionOptions());
                long p0 = ThreadCpu.Nanoseconds();
                var result = parser.ParseAsync(pending, "bench", CancellationToken.None).GetAwaiter().GetResult();
                double seconds = (ThreadCpu.Nanoseconds() - p0) / 1e9;
                Console.WriteLine($"run {r + 1}: parse to Parquet, anonymisation {(on ? "on " : "off")}: {result.Frames / seconds / 1e6:F2} M frames/CPU-s of the parsing thread");
            }
        }
        return 0;
    }
}

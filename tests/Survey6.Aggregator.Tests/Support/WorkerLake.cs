using System.Buffers.Binary;
using Survey6.Aggregator.Storage;
using Survey6.Packets.Capture;

namespace Survey6.Aggregator.Tests.Support;

/// <summary>What the tests that run real <c>aggregate run</c> workers (one host, several hosts) look for in the lake.</summary>
internal static class WorkerLake
{
    /// <summary>Published Parquet files under <paramref name="folder"/> (a writer's hidden temp files left out).</summary>
    public static IEnumerable<string> VisibleParquet(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.'))
            : [];

    /// <summary>
    /// Packets files a worker has only begun to write (<c>.SHA.parquet.RUNID.tmp</c>, still before their first row
    /// group, so the worker is surely far from the rename at the end), with the capture and the run writing it.
    /// </summary>
    public static IEnumerable<(string Sha, string RunId)> PacketsFilesBegun(string packets)
    {
        if (!Directory.Exists(packets))
            yield break;
        foreach (var temp in Directory.EnumerateFiles(packets, "*" + LakeLayout.TempSuffix, SearchOption.AllDirectories))
        {
            var parts = Path.GetFileName(temp).Split('.');
            if (parts.Length != 5)
                continue;
            long length;
            try
            {
                length = new FileInfo(temp).Length;
            }
            catch (FileNotFoundException)
            {
                continue;
            }
            if (length <= 4096)
                yield return (parts[1], parts[3]);
        }
    }

    /// <summary>
    /// A pcapng of <paramref name="count"/> IPv6/UDP frames 1 µs apart from <paramref name="firstFrameNs"/>, big enough
    /// that writing its packets file takes a while; sources and ports cycle through <paramref name="distinct"/> values.
    /// </summary>
    public static byte[] UdpCapture(int seed, int count, long firstFrameNs, int distinct)
    {
        var frame = FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17, FrameBuilder.Udp(5353, 53, new byte[24])));
        using var buffer = new MemoryStream();
        using (var writer = new PcapngWriter(buffer, new PcapngSectionInfo { UserApplication = "survey6 tests" }, leaveOpen: true))
        {
            writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 0) { Name = "eth0" });
            for (int i = 0; i < count; i++)
            {
                // Distinct flows and sources: the last bytes of the source address and the source port.
                BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(14 + 8 + 12), (seed << 24) | (i % distinct));
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 40), (ushort)(i % distinct));
                writer.WritePacket(0, firstFrameNs + (i * 1000L), frame, (uint)frame.Length);
            }
        }
        return buffer.ToArray();
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Survey6.Packets.Capture;

namespace Survey6.Probe.Tests.Support;

/// <summary>What a test needs to know about one captured frame.</summary>
internal sealed record FrameInfo(
    string File,
    int InterfaceId,
    long TimestampNanoseconds,
    int CapturedLength,
    uint OriginalLength,
    string Encapsulation,
    IPAddress? Source,
    IPAddress? Destination,
    int NextHeader,
    int IcmpType,
    int SourcePort,
    int DestinationPort,
    int TcpFlags,
    int TransportPayload)
{
    public bool IsEchoRequest(string from, string to) => IcmpType == 128 && Is(from, to);

    public bool IsEchoReply(string from, string to) => IcmpType == 129 && Is(from, to);

    public bool Is(string from, string to) => NextHeader >= 0 && Equals(Source, IPAddress.Parse(from)) && Equals(Destination, IPAddress.Parse(to));
}

/// <summary>One closed spool file read back with <see cref="CaptureReader"/>, with its manifest.</summary>
internal sealed record SpoolCapture(
    string Path,
    IReadOnlyList<FrameInfo> Frames,
    IReadOnlyList<InterfaceStatistics> Statistics,
    IReadOnlyList<string> InterfaceNames,
    IReadOnlyList<string?> Filters,
    IReadOnlyList<uint> SnapLengths,
    IReadOnlyDictionary<string, string> Metadata,
    JsonElement Manifest,
    string Sha256,
    long Size)
{
    public string CloseReason => Manifest.GetProperty("close_reason").GetString()!;
}

internal static class SpoolContents
{
    /// <summary>Every closed file of a spool directory, in order; each must read to its end without damage.</summary>
    public static List<SpoolCapture> Read(string spoolDirectory)
    {
        var result = new List<SpoolCapture>();
        foreach (var path in Directory.EnumerateFiles(spoolDirectory, "*.pcapng").Order(StringComparer.Ordinal))
            result.Add(ReadFile(path));
        return result;
    }

    public static SpoolCapture ReadFile(string path)
    {
        var frames = new List<FrameInfo>();
        var name = System.IO.Path.GetFileName(path);
        using var reader = CaptureReader.Open(path);
        while (reader.TryRead(out var frame))
        {
            Assert.Equal(FrameKind.Packet, frame.Kind);
            frames.Add(Classify(name, frame.Data, frame.LinkType, frame.TimestampNanoseconds, frame.OriginalLength) with { InterfaceId = frame.InterfaceId });
        }

        Assert.True(reader.Error is null, $"{name}: {reader.Error}");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var comment in reader.Section!.Comments)
        {
            if (PcapngMetadata.TryParseComment(comment, out var key, out var value))
                metadata[key] = value;
        }

        var manifestPath = path[..^".pcapng".Length] + ".manifest.json";
        Assert.True(File.Exists(manifestPath), $"{name} has no manifest");
        // Every manifest the probe writes is a valid one of the contract the server checks uploads against.
        Survey6.Contracts.Manifests.CaptureManifest.Parse(File.ReadAllBytes(manifestPath));
        using var manifest = JsonDocument.Parse(File.ReadAllText(manifestPath));
        var bytes = File.ReadAllBytes(path);
        return new SpoolCapture(
            path,
            frames,
            [.. reader.Statistics],
            [.. reader.Interfaces.Select(i => i.Name ?? "")],
            [.. reader.Interfaces.Select(i => i.Filter)],
            [.. reader.Interfaces.Select(i => i.SnapLength)],
            metadata,
            manifest.RootElement.Clone(),
            Convert.ToHexStringLower(SHA256.HashData(bytes)),
            bytes.Length);
    }

    /// <summary>Enough of Ethernet, IPv4 (TCP, 6in4, Teredo) and IPv6 to recognise the test's own traffic.</summary>
    public static FrameInfo Classify(string file, ReadOnlySpan<byte> data, LinkType linkType, long timestamp, uint originalLength)
    {
        var unknown = new FrameInfo(file, 0, timestamp, data.Length, originalLength, "other", null, null, -1, -1, -1, -1, -1, -1);
        int at;
        ushort etherType;
        switch ((int)linkType)
        {
            case 1: // Ethernet
                if (data.Length < 14)
                    return unknown;
                etherType = BinaryPrimitives.ReadUInt16BigEndian(data[12..]);
                at = 14;
                break;
            case 113: // Linux cooked (any)
                if (data.Length < 16)
                    return unknown;
                etherType = BinaryPrimitives.ReadUInt16BigEndian(data[14..]);
                at = 16;
                break;
            default:
                return unknown;
        }

        if (etherType == 0x86DD)
            return Ipv6(unknown, data[at..], "native");
        if (etherType != 0x0800 || data.Length < at + 20)
            return unknown;
        var ip4 = data[at..];
        var headerLength = (ip4[0] & 0x0F) * 4;
        if (headerLength < 20 || ip4.Length < headerLength)
            return unknown;
        if (ip4[9] == 41)
            return Ipv6(unknown, ip4[headerLength..], "6in4");
        var transport = ip4[headerLength..];
        if (ip4[9] == 17 && transport.Length >= 8)
        {
            // Teredo on its port, or elsewhere an IPv6 packet that exactly fills the datagram (all the tests send).
            var payload = transport[8..];
            if (BinaryPrimitives.ReadUInt16BigEndian(transport[2..]) == 3544
                || (payload.Length >= 40 && payload[0] >> 4 == 6 && BinaryPrimitives.ReadUInt16BigEndian(payload[4..]) + 40 == payload.Length))
                return Ipv6(unknown, payload, "teredo");
        }

        if ((ip4[9] == 17 && transport.Length >= 8) || (ip4[9] == 6 && transport.Length >= 14))
        {
            return unknown with
            {
                Encapsulation = "ipv4",
                Source = new IPAddress(ip4.Slice(12, 4)),
                Destination = new IPAddress(ip4.Slice(16, 4)),
                NextHeader = ip4[9],
                SourcePort = BinaryPrimitives.ReadUInt16BigEndian(transport),
                DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(transport[2..]),
                TcpFlags = ip4[9] == 6 ? transport[13] : -1,
            };
        }

        return unknown;
    }

    private static FrameInfo Ipv6(FrameInfo unknown, ReadOnlySpan<byte> ip6, string encapsulation)
    {
        if (ip6.Length < 40 || ip6[0] >> 4 != 6)
            return unknown;
        var nextHeader = ip6[6];
        var info = unknown with
        {
            Encapsulation = encapsulation,
            Source = new IPAddress(ip6.Slice(8, 16)),
            Destination = new IPAddress(ip6.Slice(24, 16)),
            NextHeader = nextHeader,
        };
        var l4 = ip6[40..];
        var payloadLength = BinaryPrimitives.ReadUInt16BigEndian(ip6[4..]);
        return nextHeader switch
        {
            58 when l4.Length >= 1 => info with { IcmpType = l4[0] },
            17 when l4.Length >= 8 => info with
            {
                SourcePort = BinaryPrimitives.ReadUInt16BigEndian(l4),
                DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]),
                TransportPayload = BinaryPrimitives.ReadUInt16BigEndian(l4[4..]) - 8,
            },
            6 when l4.Length >= 14 => info with
            {
                SourcePort = BinaryPrimitives.ReadUInt16BigEndian(l4),
                DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]),
                TcpFlags = l4[13],
                TransportPayload = payloadLength - (l4[12] >> 4) * 4,
            },
            _ => info,
        };
    }
}

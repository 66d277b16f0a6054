using System.IO.Hashing;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Aggregator.Connections;

/// <summary>
/// One row of the <c>connections</c> dataset: Zeek's <c>conn.log</c> fields (docs/datasets.md says how each relates to
/// Zeek's) plus survey6's probe, encapsulation and address classes. Times are nanoseconds since the Unix epoch.
/// </summary>
public sealed record Connection
{
    public required string Uid { get; init; }
    public required long TsNs { get; init; }
    public required string OrigH { get; init; }
    public required ushort OrigP { get; init; }
    public required string RespH { get; init; }
    public required ushort RespP { get; init; }
    public required string Proto { get; init; }
    public string? Service { get; init; }

    /// <summary>Last time less first, in nanoseconds; null when zero, as Zeek leaves it (and the byte counts) unset then.</summary>
    public long? DurationNs { get; init; }
    public long? OrigBytes { get; init; }
    public long? RespBytes { get; init; }
    public required string ConnState { get; init; }
    public required long MissedBytes { get; init; }
    public string? History { get; init; }
    public required long OrigPkts { get; init; }
    public required long OrigIpBytes { get; init; }
    public required long RespPkts { get; init; }
    public required long RespIpBytes { get; init; }
    public required string ProbeId { get; init; }
    public required string Encapsulation { get; init; }
    public required string OrigType { get; init; }
    public string? OrigIid { get; init; }
    public required string RespType { get; init; }
    public string? RespIid { get; init; }

    internal static Connection From(ConnectionState s, string probeId)
    {
        var key = s.Key;
        var origInfo = Ipv6AddressClassifier.Classify(s.OrigAddress);
        var respInfo = Ipv6AddressClassifier.Classify(s.RespAddress);
        long? duration = s.DurationNs;
        string history = s.History;
        return new Connection
        {
            Uid = MakeUid(probeId, key, s.FirstTimestampNs),
            TsNs = s.FirstTimestampNs,
            OrigH = s.OrigAddress.ToString(),
            OrigP = s.OrigPort,
            RespH = s.RespAddress.ToString(),
            RespP = s.RespPort,
            Proto = key.ProtocolName,
            Service = s.Dns ? DnsService : null,
            DurationNs = duration,
            OrigBytes = duration is null ? null : s.OrigBytes,
            RespBytes = duration is null ? null : s.RespBytes,
            ConnState = s.ConnState,
            MissedBytes = s.MissedBytes,
            History = history.Length > 0 ? history : null,
            OrigPkts = s.OrigPackets,
            OrigIpBytes = s.OrigIpBytes,
            RespPkts = s.RespPackets,
            RespIpBytes = s.RespIpBytes,
            ProbeId = probeId,
            Encapsulation = ProtocolNames.Encapsulation(key.Encapsulation),
            OrigType = Ipv6AddressClassifier.TypeName(origInfo.Type),
            OrigIid = origInfo.IidClass == IidClass.None ? null : Ipv6AddressClassifier.IidName(origInfo.IidClass),
            RespType = Ipv6AddressClassifier.TypeName(respInfo.Type),
            RespIid = respInfo.IidClass == IidClass.None ? null : Ipv6AddressClassifier.IidName(respInfo.IidClass),
        };
    }

    /// <summary>The <c>service</c> of a connection that carried DNS.</summary>
    internal const string DnsService = "dns";

    /// <summary>Characters in a uid.</summary>
    internal const int UidLength = 18;

    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// <summary>
    /// Zeek-like uid ('C' and base62), but deterministic: a hash of the probe, the key and the first packet's time, so
    /// parsing again, or stitching in another order, gives the same uid.
    /// </summary>
    internal static string MakeUid(string probeId, ConnectionKey key, long firstTimestampNs)
    {
        Span<char> text = stackalloc char[UidLength];
        WriteUid(System.Text.Encoding.UTF8.GetBytes(probeId), key, firstTimestampNs, text);
        return new string(text);
    }

    /// <summary><see cref="MakeUid"/> into <paramref name="text"/> (<see cref="UidLength"/> chars), the probe id given as UTF-8.</summary>
    internal static void WriteUid(ReadOnlySpan<byte> probeIdUtf8, ConnectionKey key, long firstTimestampNs, Span<char> text)
    {
        // One shot over probe id then key, the same digest as appending them in turn, without a hasher object.
        const int KeyBytes = (2 * Ipv6Address.Length) + 16;
        int total = probeIdUtf8.Length + KeyBytes;
        Span<byte> all = total <= 512 ? stackalloc byte[total] : new byte[total];
        probeIdUtf8.CopyTo(all);
        var buffer = all[probeIdUtf8.Length..];
        key.AddressA.Write(buffer);
        key.AddressB.Write(buffer[Ipv6Address.Length..]);
        var rest = buffer[(2 * Ipv6Address.Length)..];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(rest, key.PortA);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(rest[2..], key.PortB);
        rest[4] = key.Protocol;
        rest[5] = (byte)key.Encapsulation;
        rest[6] = key.OneWay ? (byte)1 : (byte)0;
        rest[7] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(rest[8..], firstTimestampNs);
        var digest = XxHash128.HashToUInt128(all);

        // 96 bits, as Zeek's uids carry: 17 base62 digits. One 128-bit division splits them into the low 8 digits and
        // the high 9 (below 2^49), whose digits then take 64-bit divisions: one call was 34 128-bit divisions, a
        // percent of the parse.
        var value = digest >> 32;
        const ulong LowDigits = 218_340_105_584_896; // 62^8
        var high = (ulong)(value / LowDigits);
        var low = (ulong)(value % LowDigits);
        text[0] = 'C';
        for (int i = UidLength - 1; i >= UidLength - 8; i--)
        {
            text[i] = Base62[(int)(low % 62)];
            low /= 62;
        }
        for (int i = UidLength - 9; i >= 1; i--)
        {
            text[i] = Base62[(int)(high % 62)];
            high /= 62;
        }
    }
}

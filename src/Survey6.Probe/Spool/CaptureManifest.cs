using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Survey6.Packets.Capture;
using CloseReason = Survey6.Probe.Capture.CloseReason;

namespace Survey6.Probe.Spool;

/// <summary>Counters of one interface over a file's window; null when unknown (a repaired file).</summary>
public sealed record ManifestInterface(
    int Id,
    string? Name,
    int LinkType,
    uint SnapLength,
    string? Filter,
    long Frames,
    long? Received,
    long? KernelDropped,
    long? InterfaceDropped,
    long? QueueDropped,
    long? DiskDropped);

/// <summary>
/// The JSON written beside each closed spool file (<c>NAME.manifest.json</c>) and sent with its upload.
/// It is built by reading the closed file back, so it describes exactly the bytes that were hashed:
/// survey6 metadata from the SHB, interfaces from the IDBs, counters from the ISBs, frame count and
/// first/last frame time from the EPBs.
/// </summary>
public sealed record CaptureManifest
{
    public const int FormatVersion = 1;

    /// <summary>Comment on every ISB of a closed file: drops the pcapng counters have no option for.</summary>
    public const string DropsCommentKey = "drops";

    /// <summary>Comment on the ISBs added when a file left by a crash is repaired.</summary>
    public const string RepairedCommentKey = "repaired";

    public required string File { get; init; }

    public required string Sha256 { get; init; }

    public required long Size { get; init; }

    public required long Sequence { get; init; }

    public string? ProbeId { get; init; }

    public string? Hostname { get; init; }

    public string? Version { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string? Location { get; init; }

    public string? CaptureStart { get; init; }

    /// <summary>Nanoseconds since the epoch: the counters' window (ISB start and end), or the frames' span when unknown.</summary>
    public long? WindowStartNanoseconds { get; init; }

    public long? WindowEndNanoseconds { get; init; }

    public long? FirstFrameNanoseconds { get; init; }

    public long? LastFrameNanoseconds { get; init; }

    public long Frames { get; init; }

    public required CloseReason CloseReason { get; init; }

    public bool Repaired { get; init; }

    public IReadOnlyList<ManifestInterface> Interfaces { get; init; } = [];

    /// <summary>Damage found while reading the file back (never expected for a file the probe closed).</summary>
    public string? Damage { get; init; }

    public static string ReasonName(CloseReason reason) => reason switch
    {
        CloseReason.DiskGuard => "disk-guard",
        _ => reason.ToString().ToLowerInvariant(),
    };

    /// <summary>Reads a closed capture file, hashing it on the way, and describes it.</summary>
    public static CaptureManifest Build(string path, long sequence, CloseReason reason)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
        using var hashing = new HashingReadStream(file);
        long frames = 0;
        long? first = null, last = null;
        var perInterface = new Dictionary<int, long>();
        string? damage = null;
        CaptureSection? section;
        List<CaptureInterface> interfaces;
        List<InterfaceStatistics> statistics;
        using (var reader = CaptureReader.Open(hashing, leaveOpen: true))
        {
            while (reader.TryRead(out var frame))
            {
                if (frame.Kind != FrameKind.Packet)
                    continue;
                frames++;
                perInterface[frame.InterfaceId] = perInterface.GetValueOrDefault(frame.InterfaceId) + 1;
                if (frame.HasTimestamp)
                {
                    first ??= frame.TimestampNanoseconds;
                    last = frame.TimestampNanoseconds;
                }
            }

            if (reader.Error is { } error)
                damage = $"offset {error.Offset}: {error.Message}";
            section = reader.Section;
            interfaces = [.. reader.Interfaces];
            statistics = [.. reader.Statistics];
        }

        var size = hashing.DrainAndCount();
        var sha = Convert.ToHexStringLower(hashing.Hash());

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var comment in section?.Comments ?? [])
        {
            if (PcapngMetadata.TryParseComment(comment, out var key, out var value))
                metadata.TryAdd(key, value);
        }

        // The last ISB of each interface holds the file's counters.
        var lastStats = new Dictionary<int, InterfaceStatistics>();
        foreach (var s in statistics)
            lastStats[s.InterfaceId] = s;
        var repaired = lastStats.Values.Any(s => CommentValue(s, RepairedCommentKey) is not null);

        var described = interfaces.Select(i =>
        {
            lastStats.TryGetValue(i.Id, out var s);
            var drops = s is null ? null : ParsePairs(CommentValue(s, DropsCommentKey));
            return new ManifestInterface(
                i.Id,
                i.Name,
                (int)i.LinkType,
                i.SnapLength,
                i.Filter,
                perInterface.GetValueOrDefault(i.Id),
                (long?)s?.InterfaceReceived,
                (long?)s?.OsDropped,
                (long?)s?.InterfaceDropped,
                drops?.GetValueOrDefault("queue"),
                drops?.GetValueOrDefault("disk"));
        }).ToList();

        var windowStart = lastStats.Values.Select(s => s.StartTimeNanoseconds).Where(t => t is not null).Min() ?? first;
        var windowEnd = lastStats.Values.Select(s => s.EndTimeNanoseconds).Where(t => t is not null).Max() ?? last;
        return new CaptureManifest
        {
            File = Path.GetFileName(path),
            Sha256 = sha,
            Size = size,
            Sequence = sequence,
            ProbeId = metadata.GetValueOrDefault(PcapngMetadata.ProbeId),
            Hostname = metadata.GetValueOrDefault(PcapngMetadata.Hostname),
            Version = metadata.GetValueOrDefault(PcapngMetadata.Version),
            Labels = ParseLabels(metadata.GetValueOrDefault(PcapngMetadata.Labels)),
            Location = metadata.GetValueOrDefault(PcapngMetadata.Location),
            CaptureStart = metadata.GetValueOrDefault(PcapngMetadata.CaptureStart),
            WindowStartNanoseconds = windowStart,
            WindowEndNanoseconds = windowEnd,
            FirstFrameNanoseconds = first,
            LastFrameNanoseconds = last,
            Frames = frames,
            CloseReason = repaired ? CloseReason.Repaired : reason,
            Repaired = repaired,
            Interfaces = described,
            Damage = damage,
        };
    }

    /// <summary>Sum over interfaces, or null if any interface's count is unknown.</summary>
    public static long? Sum(IEnumerable<long?> values)
    {
        long sum = 0;
        foreach (var v in values)
        {
            if (v is null)
                return null;
            sum += v.Value;
        }

        return sum;
    }

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions
        {
            Indented = true,
            // Read by people and parsers, never embedded in HTML: keep '+' in versions and non-ASCII city names as they are.
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
        {
            json.WriteStartObject();
            json.WriteNumber("manifest_version", FormatVersion);
            json.WriteString("file", File);
            json.WriteString("sha256", Sha256);
            json.WriteNumber("size", Size);
            json.WriteNumber("sequence", Sequence);
            json.WriteString("probe_id", ProbeId);
            json.WriteString("hostname", Hostname);
            json.WriteString("version", Version);
            json.WriteStartObject("labels");
            foreach (var (k, v) in Labels)
                json.WriteString(k, v);
            json.WriteEndObject();
            json.WriteString("location", Location);
            json.WriteString("capture_start", CaptureStart);
            WriteTime(json, "window_start", WindowStartNanoseconds);
            WriteTime(json, "window_end", WindowEndNanoseconds);
            WriteTime(json, "first_frame", FirstFrameNanoseconds);
            WriteTime(json, "last_frame", LastFrameNanoseconds);
            json.WriteNumber("frames", Frames);
            json.WriteString("interface", string.Join(',', Interfaces.Select(i => i.Name)));
            json.WriteString("filter", Interfaces.Count > 0 ? Interfaces[0].Filter : null);
            if (Interfaces.Count > 0)
                json.WriteNumber("snaplen", Interfaces[0].SnapLength);
            WriteNumber(json, "received", Sum(Interfaces.Select(i => i.Received)));
            json.WriteStartObject("drops");
            WriteNumber(json, "kernel", Sum(Interfaces.Select(i => i.KernelDropped)));
            WriteNumber(json, "interface", Sum(Interfaces.Select(i => i.InterfaceDropped)));
            WriteNumber(json, "queue", Sum(Interfaces.Select(i => i.QueueDropped)));
            WriteNumber(json, "disk", Sum(Interfaces.Select(i => i.DiskDropped)));
            json.WriteEndObject();
            json.WriteString("close_reason", ReasonName(CloseReason));
            json.WriteBoolean("repaired", Repaired);
            if (Damage is not null)
                json.WriteString("damage", Damage);
            json.WriteStartArray("interfaces");
            foreach (var i in Interfaces)
            {
                json.WriteStartObject();
                json.WriteNumber("id", i.Id);
                json.WriteString("name", i.Name);
                json.WriteNumber("link_type", i.LinkType);
                json.WriteNumber("snaplen", i.SnapLength);
                json.WriteString("filter", i.Filter);
                json.WriteNumber("frames", i.Frames);
                WriteNumber(json, "received", i.Received);
                WriteNumber(json, "kernel_dropped", i.KernelDropped);
                WriteNumber(json, "interface_dropped", i.InterfaceDropped);
                WriteNumber(json, "queue_dropped", i.QueueDropped);
                WriteNumber(json, "disk_dropped", i.DiskDropped);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length) + "\n";
    }

    /// <summary>The fields the spool needs back from a manifest on disk (after a restart).</summary>
    internal static (string Sha256, long Frames, long? FirstFrame, long? LastFrame) ReadSummary(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        return (
            root.GetProperty("sha256").GetString() ?? "",
            root.GetProperty("frames").GetInt64(),
            ParseTime(root, "first_frame"),
            ParseTime(root, "last_frame"));
    }

    /// <summary>The capture window of a manifest on disk (nanoseconds since the epoch), falling back to its first and last frame.</summary>
    internal static (long? Start, long? End) ReadWindow(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        return (ParseTime(root, "window_start") ?? ParseTime(root, "first_frame"), ParseTime(root, "window_end") ?? ParseTime(root, "last_frame"));
    }

    /// <summary>The value of a <c>survey6.KEY=VALUE</c> comment on a statistics block.</summary>
    public static string? CommentValue(InterfaceStatistics statistics, string key)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        foreach (var option in statistics.Options)
        {
            if (option.Code == CaptureOption.Comment && PcapngMetadata.TryParseComment(option.AsString(), out var k, out var v) && k == key)
                return v;
        }

        return null;
    }

    /// <summary>The ISB comment of a closed file: <c>survey6.drops=queue=N;disk=N</c>.</summary>
    public static string DropsComment(long queueDropped, long diskDropped) =>
        PcapngMetadata.FormatComment(DropsCommentKey, string.Create(CultureInfo.InvariantCulture, $"queue={queueDropped};disk={diskDropped}"));

    private static Dictionary<string, long>? ParsePairs(string? text)
    {
        if (text is null)
            return null;
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var pair in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || !long.TryParse(pair.AsSpan(equals + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                return null;
            result[pair[..equals]] = n;
        }

        return result;
    }

    private static Dictionary<string, string> ParseLabels(string? text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
                result[pair[..equals]] = pair[(equals + 1)..];
        }

        return result;
    }

    private static void WriteTime(Utf8JsonWriter json, string name, long? nanoseconds)
    {
        if (nanoseconds is { } ns)
            json.WriteString(name, PcapngMetadata.FormatTimestamp(ns));
        else
            json.WriteNull(name);
    }

    private static void WriteNumber(Utf8JsonWriter json, string name, long? value)
    {
        if (value is { } v)
            json.WriteNumber(name, v);
        else
            json.WriteNull(name);
    }

    private static long? ParseTime(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind != JsonValueKind.String)
            return null;
        var text = element.GetString()!;
        // RFC 3339 with nine fractional digits, as PcapngMetadata.FormatTimestamp writes it.
        if (text.Length != 30 || !DateTime.TryParseExact(text[..19], "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var seconds)
            || !long.TryParse(text.AsSpan(20, 9), NumberStyles.None, CultureInfo.InvariantCulture, out var fraction))
            return null;
        return ProbeIdentity.UnixNanoseconds(new DateTimeOffset(seconds, TimeSpan.Zero)) + fraction;
    }

    /// <summary>Hashes everything read through it.</summary>
    private sealed class HashingReadStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => _length;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            _hash.AppendData(buffer[..n]);
            _length += n;
            return n;
        }

        /// <summary>Reads (and hashes) whatever the reader left, returns the total length.</summary>
        public long DrainAndCount()
        {
            var rest = new byte[64 * 1024];
            while (Read(rest) > 0)
            {
            }

            return _length;
        }

        public byte[] Hash() => _hash.GetHashAndReset();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}

using Parquet;
using Parquet.Schema;

namespace Survey6.Aggregator.Parse;

/// <summary>One row of the <c>captures</c> dataset: what is known about a parsed capture as a whole.</summary>
public sealed record CaptureRow
{
    public required string Sha256 { get; init; }
    public required string ProbeId { get; init; }
    /// <summary>The stored capture relative to the data directory, <c>captures/PROBE/DATE/SHA.pcapng</c> (<see cref="Survey6.Data.DataLayout.StoredCaptureName"/>).</summary>
    public required string CapturePath { get; init; }
    public long SizeBytes { get; init; }
    public required string Format { get; init; }
    public long Frames { get; init; }
    public long PacketFrames { get; init; }
    public long Ipv6Frames { get; init; }
    public long BytesOnWire { get; init; }
    public long? FirstTimeNs { get; init; }
    public long? LastTimeNs { get; init; }
    public long? WindowStartNs { get; init; }
    public long? WindowEndNs { get; init; }
    public long? ReceivedAtNs { get; init; }
    public string? Hostname { get; init; }
    public string? Labels { get; init; }
    public double? Latitude { get; init; }
    public double? Longitude { get; init; }
    public string? Country { get; init; }
    public string? City { get; init; }
    public string? Interface { get; init; }
    public string? Filter { get; init; }
    public string? LinkTypes { get; init; }
    public long? ManifestFrames { get; init; }
    public long? InterfaceReceived { get; init; }
    public long? KernelDropped { get; init; }
    public long? InterfaceDropped { get; init; }
    public long? QueueDropped { get; init; }
    public long? DiskDropped { get; init; }
    public string? DropSource { get; init; }

    /// <summary>Not a column: the key of the anonymised packets file beside it, recorded in the file's metadata.</summary>
    public string? AnonymisationKeyId { get; init; }

    private static DateTime? ToUtc(long? nanoseconds) =>
        nanoseconds is { } ns ? DateTime.UnixEpoch.AddTicks(ns / 1000 * TimeSpan.TicksPerMicrosecond) : null;

    /// <summary>Writes the row as a one-row Parquet file.</summary>
    public async Task WriteAsync(Stream output, CancellationToken ct)
    {
        var columns = new (DataField Field, Func<ParquetRowGroupWriter, DataField, Task> Write)[]
        {
            Str("capture_sha256", Sha256), Str("probe_id", ProbeId), Str("capture_path", CapturePath), Long("size_bytes", SizeBytes),
            Str("format", Format), Long("frames", Frames), Long("packet_frames", PacketFrames), Long("ipv6_frames", Ipv6Frames),
            Long("bytes_on_wire", BytesOnWire),
            Time("first_time", FirstTimeNs), Time("last_time", LastTimeNs), Time("window_start", WindowStartNs), Time("window_end", WindowEndNs),
            Time("received_at", ReceivedAtNs),
            Long("first_time_ns", FirstTimeNs), Long("last_time_ns", LastTimeNs),
            Long("window_start_ns", WindowStartNs), Long("window_end_ns", WindowEndNs), Long("received_at_ns", ReceivedAtNs),
            Str("hostname", Hostname), Str("labels", Labels), Double("location_lat", Latitude), Double("location_lon", Longitude),
            Str("location_country", Country), Str("location_city", City), Str("interface", Interface), Str("filter", Filter),
            Str("link_types", LinkTypes), Long("manifest_frames", ManifestFrames), Long("if_received", InterfaceReceived),
            Long("kernel_dropped", KernelDropped), Long("interface_dropped", InterfaceDropped), Long("queue_dropped", QueueDropped),
            Long("disk_dropped", DiskDropped), Str("drop_source", DropSource),
        };
        var schema = new ParquetSchema(columns.Select(c => (Field)c.Field));
        var options = new ParquetOptions { CompressionMethod = CompressionMethod.Zstd, CompressionLevel = System.IO.Compression.CompressionLevel.Fastest };
        await using var writer = await ParquetWriter.CreateAsync(schema, output, options, append: false, ct).ConfigureAwait(false);
        var keyValues = new Dictionary<string, string> { ["survey6.dataset"] = "captures" };
        if (AnonymisationKeyId is not null)
            keyValues[Anonymisation.AnonymisationMetadata.KeyIdKey] = AnonymisationKeyId;
        writer.CustomMetadata = keyValues;
        using var group = writer.CreateRowGroup();
        foreach (var (field, write) in columns)
            await write(group, field).ConfigureAwait(false);
        group.CompleteValidate();

        static (DataField, Func<ParquetRowGroupWriter, DataField, Task>) Str(string name, string? value) =>
            (new DataField<string>(name, true), (g, f) => g.WriteAsync(f, new[] { value }));

        (DataField, Func<ParquetRowGroupWriter, DataField, Task>) Long(string name, long? value) =>
            (new DataField<long?>(name), (g, f) => g.WriteAsync<long>(f, (ReadOnlyMemory<long?>)new long?[] { value }, null, null, ct));

        // TIMESTAMP(isAdjustedToUTC, MICROS), truncated to the microsecond as the packets' ts; the *_ns column keeps the exact value.
        (DataField, Func<ParquetRowGroupWriter, DataField, Task>) Time(string name, long? nanoseconds) =>
            (new DateTimeDataField(name, DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros, isNullable: true),
             (g, f) => g.WriteAsync<DateTime>(f, (ReadOnlyMemory<DateTime?>)new DateTime?[] { ToUtc(nanoseconds) }, null, null, ct));

        (DataField, Func<ParquetRowGroupWriter, DataField, Task>) Double(string name, double? value) =>
            (new DataField<double?>(name), (g, f) => g.WriteAsync<double>(f, (ReadOnlyMemory<double?>)new double?[] { value }, null, null, ct));
    }
}

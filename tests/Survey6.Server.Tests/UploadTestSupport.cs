using System.Security.Cryptography;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Survey6.Contracts.V1;
using Survey6.Packets.Capture;
using Survey6.Probe.Join;
using Survey6.Probe.Spool;
using Survey6.Probe.Upload;
using UploadClient = Survey6.Contracts.V1.Upload.UploadClient;

namespace Survey6.Server.Tests;

/// <summary>Captures to upload, probes joined the way `survey6 probe join` does, and raw calls for what a well-behaved uploader never sends.</summary>
internal static class UploadTestSupport
{
    public static readonly DateTimeOffset BaseTime = new(2025, 3, 14, 23, 50, 0, TimeSpan.Zero);

    /// <summary>A valid pcapng file of at least <paramref name="minBytes"/> bytes, made with the packet core's writer; distinct per seed.</summary>
    public static byte[] Capture(int seed, int minBytes = 64 << 10)
    {
        var random = new Random(seed);
        using var buffer = new MemoryStream();
        using (var writer = new PcapngWriter(buffer, new PcapngSectionInfo { UserApplication = "survey6 tests", Comment = $"seed {seed}" }, leaveOpen: true))
        {
            int eth0 = writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 65535) { Name = "eth0" });
            long time = BaseTime.ToUnixTimeMilliseconds() * 1_000_000L + seed;
            long packets = 0;
            var data = new byte[1514];
            while (writer.BytesWritten < minBytes)
            {
                int length = random.Next(60, data.Length);
                random.NextBytes(data.AsSpan(0, length));
                time += random.Next(1, 1_000_000);
                writer.WritePacket(eth0, time, data.AsSpan(0, length), (uint)length);
                packets++;
            }

            writer.WriteInterfaceStatistics(eth0, time, new PcapngInterfaceStatistics { InterfaceReceived = (ulong)packets, InterfaceDropped = 0 });
        }

        return buffer.ToArray();
    }

    public static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static string Write(string directory, byte[] data)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, Sha(data)[..12] + ".pcapng");
        File.WriteAllBytes(path, data);
        return path;
    }

    /// <summary>Joins through the real join path (pin check, CSR, state directory) and opens the probe's authenticated channel.</summary>
    public static async Task<ProbeConnection> JoinAsync(Uri server, string token, string pin, string stateDirectory)
    {
        await ProbeJoinClient.JoinAsync(new JoinSettings(server, token, pin, stateDirectory, new Dictionary<string, string>(), null)
        {
            Timeout = TimeSpan.FromSeconds(20),
        });
        return ProbeConnection.Open(new ProbeStateDirectory(stateDirectory));
    }

    public static CaptureUploader Uploader(ProbeConnection connection, CaptureUploaderOptions? options = null, IUploadRateLimiter? limiter = null) =>
        new(connection.Channel.CreateCallInvoker(), Microsoft.Extensions.Options.Options.Create(options ?? new CaptureUploaderOptions
        {
            ChunkBytes = 32 << 10,
            InitialBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(500),
            StallTimeout = TimeSpan.FromSeconds(20),
        }), limiter);

    /// <summary>The file's own manifest as the probe builds it, declared with a window from <see cref="BaseTime"/>; the file may claim another probe id.</summary>
    public static UploadManifest Manifest(string path, string? claimedProbeId = null) =>
        new(BaseTime, BaseTime.AddMinutes(10), ManifestJson(path, claimedProbeId));

    /// <summary>The manifest JSON the probe builds for the file at <paramref name="path"/>.</summary>
    public static string ManifestJson(string path, string? claimedProbeId = null)
    {
        var manifest = CaptureManifestBuilder.Build(path);
        return (claimedProbeId is null ? manifest : manifest with { ProbeId = claimedProbeId }).ToJson();
    }

    /// <summary>A declaration without a manifest, as older probes sent for files the spool did not write.</summary>
    public static UploadManifest WithoutManifest() => new(BaseTime, BaseTime.AddMinutes(10));

    public static UploadHeader Header(string sha, long size, string manifest = "") => new()
    {
        Sha256 = sha,
        Size = (ulong)size,
        WindowStart = Timestamp.FromDateTimeOffset(BaseTime),
        WindowEnd = Timestamp.FromDateTimeOffset(BaseTime.AddMinutes(10)),
        ManifestJson = manifest,
    };

    public static UploadChunk Data(long offset, ReadOnlySpan<byte> bytes) => new() { Data = new UploadData { Offset = (ulong)offset, Data = ByteString.CopyFrom(bytes) } };

    public static UploadChunk Trailer(string sha) => new() { Trailer = new UploadTrailer { Sha256 = sha } };

    /// <summary>Sends exactly <paramref name="messages"/> and returns the ack, or throws the call's RpcException.</summary>
    public static async Task<UploadAck> RawUploadAsync(ProbeConnection connection, params UploadChunk[] messages)
    {
        using var call = new UploadClient(connection.Channel).Upload();
        try
        {
            foreach (var message in messages)
                await call.RequestStream.WriteAsync(message);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception e) when (e is RpcException or InvalidOperationException)
        {
            // The server ended the call early; its status is in the response.
        }

        return await call.ResponseAsync;
    }

    /// <summary>A whole file as one well-formed upload: header, chunks, trailer.</summary>
    public static UploadChunk[] WholeUpload(byte[] data, string? sha = null, string manifest = "", int chunk = 64 << 10)
    {
        sha ??= Sha(data);
        var messages = new List<UploadChunk> { new() { Header = Header(sha, data.Length, manifest) } };
        for (int offset = 0; offset < data.Length; offset += chunk)
            messages.Add(Data(offset, data.AsSpan(offset, Math.Min(chunk, data.Length - offset))));
        messages.Add(Trailer(sha));
        return [.. messages];
    }

    /// <summary>Every stored copy of a capture under DATA/captures, whatever the probe or date.</summary>
    public static string[] StoredCopies(string dataDirectory, string sha)
    {
        var captures = Path.Combine(dataDirectory, "captures");
        return Directory.Exists(captures) ? Directory.GetFiles(captures, sha + ".pcapng", SearchOption.AllDirectories) : [];
    }

    /// <summary>The shas in the ingest queue's table, with repeats if there were any.</summary>
    public static List<string> QueuedShas(string dataDirectory)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(dataDirectory, "ingest.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sha256 FROM ingest_queue";
        using var reader = command.ExecuteReader();
        var shas = new List<string>();
        while (reader.Read())
            shas.Add(reader.GetString(0));
        return shas;
    }

    /// <summary>(sha, probe, duplicate) of every row of state.db's uploads table.</summary>
    public static List<(string Sha, string Probe, bool Duplicate)> UploadRows(string dataDirectory)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(dataDirectory, "state.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sha256, probe_id, duplicate FROM uploads ORDER BY id";
        using var reader = command.ExecuteReader();
        var rows = new List<(string, string, bool)>();
        while (reader.Read())
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2) != 0));
        return rows;
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Options;
using Survey6.Probe.Join;
using Survey6.Probe.Upload;

namespace Survey6.LoadGen;

/// <summary>
/// `survey6-loadgen upload`: one probe uploading capture files to a real `survey6 server run` over
/// loopback TLS with the probe's own <see cref="CaptureUploader"/>, timed end to end (status query,
/// chunks, the server's digest check, validation, fsync, rename and queueing, the ack).
/// </summary>
internal static class UploadBench
{
    public const string Usage = """
        survey6-loadgen upload [--total 1GiB] [--file-size 256MiB] [--chunk 256KiB] [--frame 1514] [--server-data DIR] [--survey6 PATH] [--work DIR] [--keep]

        Writes --total bytes of pcap files (--file-size each, frames of --frame bytes, random
        payload), starts `survey6 server run`, joins one probe and uploads the files one after the
        other. --server-data puts the server's data directory under DIR instead of the work
        directory (e.g. /dev/shm, to take the disk out of the measurement). Sizes take KiB, MiB or GiB.
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        long total = 1L << 30, fileSize = 256L << 20;
        int chunk = 256 << 10, frame = 1514;
        string? survey6 = null, workDirectory = null, serverData = null;
        bool keep = false;
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--total": total = ParseSize(Value()); break;
                    case "--file-size": fileSize = ParseSize(Value()); break;
                    case "--chunk": chunk = checked((int)ParseSize(Value())); break;
                    case "--frame": frame = checked((int)ParseSize(Value())); break;
                    case "--survey6": survey6 = Value(); break;
                    case "--server-data": serverData = Value(); break;
                    case "--work": workDirectory = Value(); break;
                    case "--keep": keep = true; break;
                    default: throw new ArgumentException($"unknown option {args[i]}");
                }
            }

            if (frame is < 60 or > 65_535 || fileSize < 24 + 16 + frame)
                throw new ArgumentException("--frame must be 60..65535 and --file-size hold at least one frame");
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var work = workDirectory ?? Path.Combine(Path.GetTempPath(), "survey6-uploadbench-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        var files = (int)Math.Max(1, total / fileSize);
        var captures = Path.Combine(work, "captures");
        Directory.CreateDirectory(captures);
        ServerUnderTest? server = null;
        try
        {
            var paths = new List<string>();
            for (var i = 0; i < files; i++)
            {
                var path = Path.Combine(captures, $"capture-{i:D3}-{fileSize}-{frame}.pcap");
                if (!File.Exists(path) || new FileInfo(path).Length != PcapLength(fileSize, frame))
                    WritePcap(path, fileSize, frame, seed: i);
                paths.Add(path);
            }

            var bytes = paths.Sum(p => new FileInfo(p).Length);
            Log($"{files} capture files, {bytes / 1e6:F0} MB in {captures}");

            // A fresh server each run, so every upload stores new bytes rather than finding a duplicate.
            var data = Path.Combine(serverData ?? work, "survey6-upload-server-" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture));
            server = await ServerUnderTest.StartAsync(survey6 ?? Path.Combine(Repository.Root(), "survey6"), data, 1);
            var token = await server.CreateTokenAsync(1);
            var state = Path.Combine(data, "probe");
            await ProbeJoinClient.JoinAsync(new JoinSettings(server.GrpcUrl, token, server.Pin, state, new Dictionary<string, string>(), null));
            using var connection = ProbeConnection.Open(new ProbeStateDirectory(state), server.GrpcUrl);
            var uploader = new CaptureUploader(connection.Channel.CreateCallInvoker(), Options.Create(new CaptureUploaderOptions { ChunkBytes = chunk }));

            // The uploader hashes each file before it sends it (the header carries the SHA-256); timed apart as well.
            var hashClock = Stopwatch.StartNew();
            foreach (var path in paths)
                await CaptureUploader.HashAsync(path);
            var hashSeconds = hashClock.Elapsed.TotalSeconds;

            // Warm-up: connection, TLS and JIT on a small file that is not counted.
            var warm = Path.Combine(captures, "warm-up.pcap");
            WritePcap(warm, 4L << 20, frame, seed: Environment.TickCount);
            await uploader.UploadAsync(warm, Manifest());

            var serverBefore = server.Usage();
            var clientBefore = ProcessUsage.Read(Environment.ProcessId);
            var clock = Stopwatch.StartNew();
            var perFile = new List<double>();
            foreach (var path in paths)
            {
                var fileClock = Stopwatch.StartNew();
                var result = await uploader.UploadAsync(path, Manifest());
                if (result.Ack.Duplicate || result.BytesSent != result.Size)
                    throw new InvalidOperationException($"{path}: expected a fresh upload of every byte, got duplicate={result.Ack.Duplicate} sent={result.BytesSent}");
                perFile.Add(result.Size / fileClock.Elapsed.TotalSeconds / 1e6);
            }

            var seconds = clock.Elapsed.TotalSeconds;
            var serverAfter = server.Usage();
            var clientAfter = ProcessUsage.Read(Environment.ProcessId);
            Console.WriteLine();
            Console.WriteLine("| files | file MiB | chunk KiB | MB | seconds | MB/s | per file MB/s (min–max) | hash-only MB/s | server CPU % | uploader CPU % | server RSS MiB |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {files} | {fileSize / 1048576.0:0.#} | {chunk / 1024} | {bytes / 1e6:F0} | {seconds:F2} | {bytes / seconds / 1e6:F0} | {perFile.Min():F0}–{perFile.Max():F0} | {bytes / hashSeconds / 1e6:F0} | {(serverAfter.CpuSeconds - serverBefore.CpuSeconds) / seconds * 100:F0} | {(clientAfter.CpuSeconds - clientBefore.CpuSeconds) / seconds * 100:F0} | {serverAfter.RssMiB:F0} |"));
            return 0;
        }
        finally
        {
            server?.Dispose();
            if (serverData is not null && server is not null)
            {
                try
                {
                    Directory.Delete(server.DataDirectory, recursive: true);
                }
                catch (IOException)
                {
                }
            }

            if (!keep)
            {
                try
                {
                    Directory.Delete(work, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    /// <summary>The window only: a manifest would be read and checked by the server, which is not what this measures.</summary>
    private static Survey6.Probe.Upload.UploadManifest Manifest()
    {
        var end = DateTimeOffset.UtcNow;
        return new(end.AddMinutes(-10), end);
    }

    private static long PcapLength(long target, int frame) => 24 + (target - 24) / (16 + frame) * (16 + frame);

    /// <summary>A classic pcap (Ethernet, microsecond timestamps) of equal frames with random payload, about <paramref name="target"/> bytes.</summary>
    private static void WritePcap(string path, long target, int frame, int seed)
    {
        var random = new Random(seed);
        using var file = new FileStream(path + ".tmp", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        Span<byte> header = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xa1b2c3d4);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], 65_535);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 1); // Ethernet
        file.Write(header);
        var record = new byte[16 + frame];
        var frames = (target - 24) / record.Length;
        var seconds = (uint)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        for (long n = 0; n < frames; n++)
        {
            random.NextBytes(record.AsSpan(16));
            BinaryPrimitives.WriteUInt32LittleEndian(record, seconds + (uint)(n / 100_000));
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), (uint)(n % 100_000 * 10));
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), (uint)frame);
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12), (uint)frame);
            // An IPv6 ethertype, so the frames dissect as what the probe would capture.
            record[16 + 12] = 0x86;
            record[16 + 13] = 0xdd;
            file.Write(record);
        }

        file.Flush();
        file.Close();
        File.Move(path + ".tmp", path, overwrite: true);
    }

    internal static long ParseSize(string text)
    {
        var (number, scale) = text switch
        {
            _ when text.EndsWith("GiB", StringComparison.Ordinal) => (text[..^3], 1L << 30),
            _ when text.EndsWith("MiB", StringComparison.Ordinal) => (text[..^3], 1L << 20),
            _ when text.EndsWith("KiB", StringComparison.Ordinal) => (text[..^3], 1L << 10),
            _ => (text, 1L),
        };
        return long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? checked(value * scale)
            : throw new ArgumentException($"not a size: {text}");
    }

    private static void Log(string message) =>
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:HH:mm:ss} {message}"));
}

internal static class Repository
{
    public static string Root()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Survey6.slnx")))
                return directory.FullName;
        }

        throw new InvalidOperationException("cannot find the repository root (Survey6.slnx); pass --survey6 PATH");
    }
}

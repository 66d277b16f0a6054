using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Survey6.Packets.Capture;

namespace Survey6.Server.Storage.Tests;

/// <summary>A temporary data directory with a store over it and a sink that records every call.</summary>
internal sealed class StoreFixture : IDisposable
{
    public const string Probe = "probe-01";

    private readonly Action<CaptureStoreOptions>? _configure;

    public StoreFixture(Action<CaptureStoreOptions>? configure = null)
    {
        _configure = configure;
        Directory = System.IO.Directory.CreateTempSubdirectory("survey6-store-").FullName;
        Store = Open();
    }

    public string Directory { get; }

    public RecordingSink Sink { get; } = new();

    public CaptureStore Store { get; private set; }

    /// <summary>A fresh store over the same directory, as after a restart.</summary>
    public CaptureStore Reopen() => Store = Open();

    public CaptureStoreOptions Options()
    {
        var options = new CaptureStoreOptions { DataDirectory = Directory, SessionWaitTimeout = TimeSpan.FromMilliseconds(200) };
        _configure?.Invoke(options);
        return options;
    }

    /// <summary>Every stored capture file under captures/.</summary>
    public string[] StoredFiles() => FilesUnder("captures", "*.pcapng");

    public string[] FilesUnder(string relative, string pattern = "*")
    {
        var path = Path.Combine(Directory, relative);
        return System.IO.Directory.Exists(path) ? System.IO.Directory.GetFiles(path, pattern, SearchOption.AllDirectories) : [];
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>What the server knows of probes, as state.db would say it.</summary>
    public Dictionary<string, ProbeAnnotation> Probes { get; } = new(StringComparer.Ordinal)
    {
        [Probe] = new(new Dictionary<string, string> { ["site"] = "lab", ["rack"] = "r1" }, new ProbeLocation(52.52, 13.405, "DE", "Berlin")),
    };

    private CaptureStore Open() => new(Microsoft.Extensions.Options.Options.Create(Options()), Sink, probes: new Annotations(Probes));

    private sealed class Annotations(Dictionary<string, ProbeAnnotation> probes) : IProbeAnnotations
    {
        public ProbeAnnotation? Find(string probeId) => probes.GetValueOrDefault(probeId);
    }
}

/// <summary>Records sink calls; can be told to fail.</summary>
internal sealed class RecordingSink : ICaptureStoredSink
{
    private readonly ConcurrentQueue<StoredCapture> _calls = new();

    public Func<StoredCapture, Exception?>? Fail { get; set; }

    public IReadOnlyCollection<StoredCapture> Calls => _calls;

    public int CallsFor(string sha) => _calls.Count(c => c.Sha256 == sha);

    public ValueTask OnStoredAsync(StoredCapture capture, CancellationToken cancellationToken)
    {
        if (Fail?.Invoke(capture) is { } exception)
            throw exception;
        // The capture must already be durable under its final name, with its manifest, when the sink hears of it.
        Assert.True(File.Exists(capture.Path));
        Assert.True(File.Exists(capture.ManifestPath));
        _calls.Enqueue(capture);
        return ValueTask.CompletedTask;
    }
}

internal static class TestCaptures
{
    public static readonly DateTimeOffset WindowStart = new(2025, 3, 14, 23, 59, 0, TimeSpan.FromHours(-2));

    /// <summary>A valid pcapng file of a few packets of random bytes, built with the packet core's writer.</summary>
    public static byte[] Pcapng(int seed, int packets = 40, int maxPacket = 1500)
    {
        var random = new Random(seed);
        using var buffer = new MemoryStream();
        using (var writer = new PcapngWriter(buffer, new PcapngSectionInfo
        {
            UserApplication = "survey6 tests",
            Metadata = [new(PcapngMetadata.ProbeId, StoreFixture.Probe)],
        }, leaveOpen: true))
        {
            int ethernet = writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 65535) { Name = "eth0" });
            long time = 1_741_996_800_000_000_000L + seed;
            for (int i = 0; i < packets; i++)
            {
                var data = new byte[random.Next(14, maxPacket)];
                random.NextBytes(data);
                time += random.Next(1, 1_000_000);
                writer.WritePacket(ethernet, time, data, (uint)data.Length);
            }
            writer.WriteInterfaceStatistics(ethernet, time, new PcapngInterfaceStatistics { InterfaceReceived = (ulong)packets, InterfaceDropped = 0 });
        }
        return buffer.ToArray();
    }

    public static string Sha(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static UploadHeader Header(byte[] data, string? manifest = null) =>
        new(Sha(data), data.Length, WindowStart, WindowStart.AddMinutes(10), manifest ?? Manifest(data));

    /// <summary>A probe manifest describing <paramref name="data"/> (<see cref="Pcapng"/>'s 40 frames, drops as given).</summary>
    public static string Manifest(byte[] data, long queueDropped = 0) => new CaptureManifest
    {
        ManifestVersion = CaptureManifest.CurrentVersion,
        File = "test.pcapng",
        Sha256 = Sha(data),
        Size = data.Length,
        ProbeId = "whatever-the-probe-claims",
        Labels = new Dictionary<string, string> { ["site"] = "claimed" },
        WindowStartNs = WindowStart.ToUnixTimeMilliseconds() * 1_000_000,
        WindowEndNs = WindowStart.AddMinutes(10).ToUnixTimeMilliseconds() * 1_000_000,
        Frames = 40,
        Drops = new ManifestDrops { Kernel = 0, Interface = 0, Queue = queueDropped, Disk = 0 },
        Interfaces = [new ManifestInterface { Id = 0, Name = "eth0", Frames = 40 }],
    }.ToJson();

    /// <summary>Begins, sends everything from the session's offset in chunks of the given sizes (cycled), completes.</summary>
    public static async Task<StoredCapture> UploadAsync(CaptureStore store, byte[] data, IReadOnlyList<int>? chunks = null, string probe = StoreFixture.Probe)
    {
        await using var session = await store.BeginAsync(probe, Header(data));
        await SendAsync(session, data, data.Length, chunks);
        return await session.CompleteAsync(Sha(data));
    }

    /// <summary>Sends bytes from the session's offset up to <paramref name="end"/>.</summary>
    public static async Task SendAsync(UploadSession session, byte[] data, long end, IReadOnlyList<int>? chunks = null)
    {
        chunks ??= [8192];
        int next = 0;
        while (session.Offset < end)
        {
            int size = (int)Math.Min(Math.Max(1, chunks[next++ % chunks.Count]), end - session.Offset);
            await session.WriteAsync(session.Offset, data.AsMemory((int)session.Offset, size));
        }
    }
}

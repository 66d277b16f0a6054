using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;

namespace Survey6.Server.Storage.Tests;

public class UploadTests
{
    [Fact]
    public async Task Stores_under_probe_and_window_date_with_manifest_beside()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(1);
        var sha = TestCaptures.Sha(data);

        var stored = await TestCaptures.UploadAsync(fixture.Store, data);

        // The window starts at 23:59 at UTC-2, which is the 15th in UTC.
        var directory = Path.Combine(fixture.Directory, "captures", StoreFixture.Probe, "2025-03-15");
        Assert.Equal(Path.Combine(directory, sha + ".pcapng"), stored.Path);
        Assert.Equal(Path.Combine(directory, sha + ".manifest.json"), stored.ManifestPath);
        Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
        Assert.Equal((sha, StoreFixture.Probe, (long)data.Length, false), (stored.Sha256, stored.ProbeId, stored.Size, stored.Duplicate));
        Assert.True(File.Exists(Path.Combine(directory, sha + ".queued")));
        Assert.Empty(fixture.FilesUnder("incoming"));
        Assert.Equal(stored, Assert.Single(fixture.Sink.Calls));
    }

    [Fact]
    public async Task Manifest_holds_server_facts_and_the_probe_manifest()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(2);

        var stored = await TestCaptures.UploadAsync(fixture.Store, data);

        using var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(stored.ManifestPath));
        var root = manifest.RootElement;
        Assert.Equal(2, root.GetProperty("server_manifest_version").GetInt32());
        Assert.Equal(stored.Sha256, root.GetProperty("sha256").GetString());
        Assert.Equal(StoreFixture.Probe, root.GetProperty("probe_id").GetString());
        Assert.Equal(data.Length, root.GetProperty("size").GetInt64());
        Assert.Equal("pcapng", root.GetProperty("format").GetString());
        Assert.Equal(TestCaptures.WindowStart, root.GetProperty("window_start").GetDateTimeOffset());
        Assert.Equal(TestCaptures.WindowStart.AddMinutes(10), root.GetProperty("window_end").GetDateTimeOffset());
        // What the server knows of the probe, not what its manifest claims; the probe's manifest is kept whole beside it.
        Assert.Equal(["rack=r1", "site=lab"], root.GetProperty("labels").EnumerateObject().Select(p => p.Name + "=" + p.Value.GetString()));
        Assert.Equal("Berlin", root.GetProperty("location").GetProperty("city").GetString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(TestCaptures.Manifest(data)), JsonNode.Parse(root.GetProperty("probe_manifest").GetRawText())));
        var read = StoredCaptureManifest.Load(stored.ManifestPath);
        Assert.Equal(("whatever-the-probe-claims", "claimed"), (read.ProbeManifest!.ProbeId, read.ProbeManifest.Labels["site"]));
    }

    [Fact]
    public async Task Random_chunk_sizes_store_the_file_unchanged()
    {
        var captures = Enumerable.Range(0, 4).Select(i => TestCaptures.Pcapng(100 + i)).ToArray();
        await Gen.Select(Gen.Int[0, captures.Length - 1], Gen.Int[1, 20_000].List[1, 8]).SampleAsync(async (which, chunks) =>
        {
            using var fixture = new StoreFixture();
            var data = captures[which];
            var stored = await TestCaptures.UploadAsync(fixture.Store, data, chunks);
            Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
            Assert.Single(fixture.StoredFiles());
            Assert.Equal(1, fixture.Sink.CallsFor(stored.Sha256));
        }, iter: 40, threads: 1);
    }

    [Fact]
    public async Task Duplicate_is_acknowledged_without_storing_twice()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(3);
        var first = await TestCaptures.UploadAsync(fixture.Store, data);

        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        Assert.True(session.IsDuplicate);
        Assert.Equal(data.Length, session.Offset);
        Assert.Equal(first with { Duplicate = true }, session.Stored);
        var again = await session.CompleteAsync(first.Sha256.ToUpperInvariant());
        Assert.True(again.Duplicate);
        Assert.Equal(first.Path, again.Path);

        // Also after a restart, and whatever window the probe now declares.
        fixture.Reopen();
        var header = TestCaptures.Header(data) with { WindowStart = TestCaptures.WindowStart.AddDays(3), WindowEnd = TestCaptures.WindowStart.AddDays(3) };
        await using var later = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        Assert.True(later.IsDuplicate);

        Assert.Equal(first.Path, Assert.Single(fixture.StoredFiles()));
        Assert.Single(fixture.FilesUnder("captures", "*.manifest.json"));
        Assert.Equal(data, await File.ReadAllBytesAsync(first.Path));
        Assert.Empty(fixture.FilesUnder("incoming"));
    }

    [Fact]
    public async Task Held_bytes_follow_the_upload()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(4);
        var sha = TestCaptures.Sha(data);
        Assert.Equal(new HeldBytes(0, false), await fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, sha));

        await using (var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)))
            await TestCaptures.SendAsync(session, data, 1000);
        Assert.Equal(new HeldBytes(1000, false), await fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, sha.ToUpperInvariant()));

        await TestCaptures.UploadAsync(fixture.Store, data);
        Assert.Equal(new HeldBytes(data.Length, true), await fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, sha));
        Assert.Equal(new HeldBytes(0, false), await fixture.Store.GetHeldBytesAsync("other-probe", sha));
    }

    [Fact]
    public async Task Stored_files_are_not_readable_by_others()
    {
        if (OperatingSystem.IsWindows())
            return;
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(5);
        var stored = await TestCaptures.UploadAsync(fixture.Store, data);
        await using (var partial = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(TestCaptures.Pcapng(6))))
            await partial.WriteAsync(0, new byte[10]);

        const UnixFileMode fileAllowed = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
        const UnixFileMode directoryAllowed = fileAllowed | UnixFileMode.UserExecute | UnixFileMode.GroupExecute;
        var files = fixture.FilesUnder("captures").Concat(fixture.FilesUnder("incoming")).ToList();
        Assert.Contains(stored.Path, files);
        Assert.Contains(files, f => f.EndsWith(".part", StringComparison.Ordinal));
        Assert.Equal(5, files.Count); // capture, manifest, marker, part, meta
        foreach (var file in files)
            Assert.True((File.GetUnixFileMode(file) & ~fileAllowed) == 0, $"{file} is {File.GetUnixFileMode(file)}");
        foreach (var directory in Directory.GetDirectories(fixture.Directory, "*", SearchOption.AllDirectories))
            Assert.True((File.GetUnixFileMode(directory) & ~directoryAllowed) == 0, $"{directory} is {File.GetUnixFileMode(directory)}");
    }

    [Fact]
    public async Task Classic_pcap_is_accepted()
    {
        using var fixture = new StoreFixture();
        // Little-endian microsecond pcap header (Ethernet) and one 60-byte record.
        var data = new byte[24 + 16 + 60];
        BitConverter.TryWriteBytes(data.AsSpan(0), 0xA1B2C3D4u);
        BitConverter.TryWriteBytes(data.AsSpan(4), (ushort)2);
        BitConverter.TryWriteBytes(data.AsSpan(6), (ushort)4);
        BitConverter.TryWriteBytes(data.AsSpan(16), 65535u);
        BitConverter.TryWriteBytes(data.AsSpan(20), 1u);
        BitConverter.TryWriteBytes(data.AsSpan(24 + 8), 60u);
        BitConverter.TryWriteBytes(data.AsSpan(24 + 12), 60u);

        var stored = await TestCaptures.UploadAsync(fixture.Store, data);

        using var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(stored.ManifestPath));
        Assert.Equal("pcap", manifest.RootElement.GetProperty("format").GetString());
    }

    [Fact]
    public async Task Different_files_upload_in_parallel()
    {
        using var fixture = new StoreFixture();
        var captures = Enumerable.Range(0, 8).Select(i => TestCaptures.Pcapng(200 + i, packets: 80)).ToArray();
        var sessions = new List<UploadSession>();
        foreach (var data in captures)
            sessions.Add(await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)));

        // All sessions are open at once (each holds its own lock), and their writes interleave.
        var stored = await Task.WhenAll(sessions.Select((session, i) => Task.Run(async () =>
        {
            await using (session)
            {
                await TestCaptures.SendAsync(session, captures[i], captures[i].Length, [997, 3001, 64]);
                return await session.CompleteAsync(session.Sha256);
            }
        })));

        Assert.Equal(captures.Length, fixture.StoredFiles().Length);
        for (int i = 0; i < captures.Length; i++)
            Assert.Equal(captures[i], await File.ReadAllBytesAsync(stored[i].Path));
        Assert.Equal(captures.Length, fixture.Sink.Calls.Count);
    }

    [Fact]
    public async Task Second_session_for_one_capture_waits_for_the_first()
    {
        using var fixture = new StoreFixture(o => o.SessionWaitTimeout = TimeSpan.FromSeconds(10));
        var data = TestCaptures.Pcapng(7);
        var header = TestCaptures.Header(data);
        var first = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        await first.WriteAsync(0, data.AsMemory(0, 500));

        var second = fixture.Store.BeginAsync(StoreFixture.Probe, header).AsTask();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (fixture.Store.SessionsFor(StoreFixture.Probe, header.Sha256) < 2 && !second.IsCompleted && DateTime.UtcNow < deadline)
            await Task.Delay(10);
        Assert.Equal(2, fixture.Store.SessionsFor(StoreFixture.Probe, header.Sha256)); // the second is queued behind the first
        Assert.False(second.IsCompleted);

        // The first connection dies: the waiting session resumes where it stopped.
        await first.DisposeAsync();
        await using var resumed = await second;
        Assert.Equal(500, resumed.Offset);
        await TestCaptures.SendAsync(resumed, data, data.Length);
        await resumed.CompleteAsync(header.Sha256);
        Assert.Single(fixture.StoredFiles());
    }

    [Fact]
    public async Task Second_session_for_one_capture_is_refused_after_the_wait()
    {
        using var fixture = new StoreFixture(o => o.SessionWaitTimeout = TimeSpan.FromMilliseconds(100));
        var data = TestCaptures.Pcapng(8);
        await using var first = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));

        var e = await Assert.ThrowsAsync<UploadRejectedException>(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)).AsTask());
        Assert.Equal(UploadRejection.ChunkSequence, e.Rejection);
        // The first session is unharmed.
        await first.WriteAsync(0, data);
        await first.CompleteAsync(first.Sha256);
    }

    [Fact]
    public async Task Same_capture_from_two_probes_is_stored_for_each()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(9);
        var a = await TestCaptures.UploadAsync(fixture.Store, data, probe: "probe-a");
        var b = await TestCaptures.UploadAsync(fixture.Store, data, probe: "probe-b");
        Assert.False(b.Duplicate);
        Assert.NotEqual(a.Path, b.Path);
    }
}

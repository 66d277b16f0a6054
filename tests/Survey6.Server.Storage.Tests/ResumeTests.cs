using CsCheck;

namespace Survey6.Server.Storage.Tests;

public class ResumeTests
{
    private static readonly byte[][] Captures = Enumerable.Range(0, 3).Select(i => TestCaptures.Pcapng(300 + i, packets: 60)).ToArray();

    [Fact]
    public async Task Cut_at_any_point_and_resumed_gives_the_same_file_queued_once()
    {
        var gen = Gen.Select(Gen.Int[0, Captures.Length - 1], Gen.Double[0, 1], Gen.Int[1, 9000].List[1, 5], Gen.Bool);
        await gen.SampleAsync(async (which, cutFraction, chunks, restart) =>
        {
            using var fixture = new StoreFixture();
            var data = Captures[which];
            int cut = (int)(cutFraction * data.Length);

            // The connection breaks after `cut` bytes (the session is abandoned, as when the stream dies).
            await using (var first = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)))
                await TestCaptures.SendAsync(first, data, cut, chunks);
            if (restart)
                fixture.Reopen();

            await using var second = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
            Assert.False(second.IsDuplicate);
            Assert.Equal(cut, second.Offset);
            await TestCaptures.SendAsync(second, data, data.Length, chunks);
            var stored = await second.CompleteAsync(TestCaptures.Sha(data));

            Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
            Assert.Single(fixture.StoredFiles());
            Assert.Equal(1, fixture.Sink.CallsFor(stored.Sha256));
            Assert.Empty(fixture.FilesUnder("incoming"));
        }, iter: 40, threads: 1);
    }

    [Fact]
    public async Task Resuming_several_times_hashes_the_held_bytes_each_time()
    {
        using var fixture = new StoreFixture();
        var data = Captures[0];
        var header = TestCaptures.Header(data);
        for (int cut = 1; cut < data.Length; cut += data.Length / 5)
        {
            await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
            await TestCaptures.SendAsync(session, data, Math.Max(session.Offset, cut), [777]);
        }
        await using var last = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        await TestCaptures.SendAsync(last, data, data.Length);
        var stored = await last.CompleteAsync(header.Sha256);
        Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
    }

    [Fact]
    public async Task Changed_declared_size_starts_over()
    {
        using var fixture = new StoreFixture();
        var data = Captures[1];
        var header = TestCaptures.Header(data);
        await using (var wrong = await fixture.Store.BeginAsync(StoreFixture.Probe, header with { Size = data.Length + 100, ManifestJson = "" }))
            await wrong.WriteAsync(0, data.AsMemory(0, 2000));

        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        Assert.Equal(0, session.Offset);
        await TestCaptures.SendAsync(session, data, data.Length);
        await session.CompleteAsync(header.Sha256);
    }

    [Fact]
    public async Task Part_without_meta_resumes()
    {
        using var fixture = new StoreFixture();
        var data = Captures[2];
        var header = TestCaptures.Header(data);
        await using (var first = await fixture.Store.BeginAsync(StoreFixture.Probe, header))
            await first.WriteAsync(0, data.AsMemory(0, 3000));
        // A crash between creating the part and writing its meta.
        File.Delete(Path.Combine(fixture.Directory, "incoming", StoreFixture.Probe, header.Sha256 + ".meta"));

        fixture.Reopen();
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        Assert.Equal(3000, session.Offset);
        await TestCaptures.SendAsync(session, data, data.Length);
        await session.CompleteAsync(header.Sha256);
    }

    [Fact]
    public async Task Cancelled_write_ends_the_session_and_a_new_one_resumes()
    {
        using var fixture = new StoreFixture();
        var data = Captures[0];
        var header = TestCaptures.Header(data);
        var session = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        await session.WriteAsync(0, data.AsMemory(0, 100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => session.WriteAsync(100, data.AsMemory(100, 100), new CancellationToken(true)).AsTask());
        await Assert.ThrowsAsync<InvalidOperationException>(() => session.WriteAsync(100, data.AsMemory(100, 100)).AsTask());

        // The failed session released its lock without being disposed.
        await using var resumed = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        Assert.Equal(100, resumed.Offset);
        await TestCaptures.SendAsync(resumed, data, data.Length);
        await resumed.CompleteAsync(header.Sha256);
        await session.DisposeAsync();
    }
}

using System.Diagnostics;
using System.Text.Json;

namespace Survey6.Server.Storage.Tests;

/// <summary>
/// A crash anywhere must leave either a resumable partial upload or the whole stored capture with its manifest.
/// The child-process tests kill a real process (SIGKILL: no finally blocks, no disposal) mid-upload.
/// </summary>
public class CrashTests
{
    public static TheoryData<string> Steps() => [.. Enum.GetNames<CommitStep>()];

    [Fact]
    public async Task Killed_while_writing_then_resumed_by_a_new_store()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(400, packets: 60);
        int cut = data.Length / 3 + 7;

        await using (var child = await CrashHelper.StartAsync(fixture, data, "write", cut.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            Assert.Equal($"READY {cut}", await child.WaitForAsync("READY"));
            // While the child's session lives, its lock on the part keeps this process out.
            var e = await Assert.ThrowsAsync<UploadRejectedException>(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)).AsTask());
            Assert.Equal(UploadRejection.ChunkSequence, e.Rejection);
            Assert.Contains("another process", e.Message, StringComparison.Ordinal);
        }

        await ResumeAndCheckAsync(fixture, data, expectedOffset: cut, expectedSinkCalls: 1);
    }

    [Fact]
    public async Task Killed_at_a_random_moment_then_resumed_by_a_new_store()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(401, packets: 200);

        await using (var child = await CrashHelper.StartAsync(fixture, data, "stream"))
        {
            await child.WaitForAsync("STARTED");
            await Task.Delay(Random.Shared.Next(5, 60));
        }

        await ResumeAndCheckAsync(fixture, data, expectedOffset: null, expectedSinkCalls: 1);
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task Killed_after_each_commit_step_then_recovered(string stepName)
    {
        var step = Enum.Parse<CommitStep>(stepName);
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(402);

        await using (var child = await CrashHelper.StartAsync(fixture, data, "step", stepName))
            Assert.Equal($"AT {stepName}", await child.WaitForAsync("AT"));

        // The child's sink counted for nothing here: only once it wrote the marker is the capture known to be queued.
        await ResumeAndCheckAsync(fixture, data, expectedOffset: step < CommitStep.Renamed ? data.Length : null,
            expectedSinkCalls: step == CommitStep.Queued ? 0 : 1);
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task Failure_after_each_commit_step_leaves_a_resumable_state(string stepName)
    {
        var step = Enum.Parse<CommitStep>(stepName);
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(403);
        fixture.Store.StepHook = s =>
        {
            if (s == step)
                throw new IOException("simulated failure");
        };

        await using (var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)))
        {
            await session.WriteAsync(0, data);
            await Assert.ThrowsAsync<IOException>(() => session.CompleteAsync(session.Sha256).AsTask());
        }

        // A failure after the sink returned leaves the capture queued (the sink heard of it) but unacknowledged.
        int before = step >= CommitStep.SinkReturned ? 1 : 0;
        Assert.Equal(before, fixture.Sink.Calls.Count);
        await ResumeAndCheckAsync(fixture, data, expectedOffset: null, expectedSinkCalls: before + (step == CommitStep.Queued ? 0 : 1));
    }

    [Fact]
    public async Task Recovery_offers_a_stored_but_unqueued_capture_again()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(404);
        fixture.Sink.Fail = _ => new InvalidOperationException("queue unavailable");

        // Stored, but the queue refused it: no acknowledgement.
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => TestCaptures.UploadAsync(fixture.Store, data));
        Assert.Equal("queue unavailable", e.Message);
        var path = Assert.Single(fixture.StoredFiles());
        Assert.False(File.Exists(Path.ChangeExtension(path, ".queued")));
        Assert.Equal(new HeldBytes(data.Length, false), await fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, TestCaptures.Sha(data)));

        fixture.Sink.Fail = null;
        fixture.Reopen();
        var report = await fixture.Store.RecoverAsync();

        Assert.Equal(1, report.Requeued);
        var offered = Assert.Single(fixture.Sink.Calls);
        Assert.Equal(path, offered.Path);
        Assert.True(File.Exists(Path.ChangeExtension(path, ".queued")));
        // Once queued, recovery leaves it alone.
        Assert.Equal(0, (await fixture.Store.RecoverAsync()).Requeued);
        Assert.Single(fixture.Sink.Calls);
    }

    [Fact]
    public async Task Retried_upload_of_a_stored_but_unqueued_capture_queues_it_before_the_acknowledgement()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(405);
        fixture.Sink.Fail = _ => new InvalidOperationException("queue unavailable");
        await Assert.ThrowsAsync<InvalidOperationException>(() => TestCaptures.UploadAsync(fixture.Store, data));

        // Still failing: the duplicate cannot be acknowledged either.
        await Assert.ThrowsAsync<InvalidOperationException>(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)).AsTask());

        fixture.Sink.Fail = null;
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        Assert.True(session.IsDuplicate);
        Assert.Single(fixture.Sink.Calls);
        Assert.Equal(new HeldBytes(data.Length, true), await fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, session.Sha256));
    }

    [Fact]
    public async Task Recovery_removes_leftovers_and_abandoned_uploads()
    {
        using var fixture = new StoreFixture(o => o.AbandonedUploadAge = TimeSpan.FromHours(1));
        var stored = await TestCaptures.UploadAsync(fixture.Store, TestCaptures.Pcapng(406));
        var incoming = Path.Combine(fixture.Directory, "incoming", StoreFixture.Probe);

        var fresh = TestCaptures.Pcapng(407);
        var old = TestCaptures.Pcapng(408);
        await using (var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(fresh)))
            await session.WriteAsync(0, fresh.AsMemory(0, 100));
        await using (var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(old)))
            await session.WriteAsync(0, old.AsMemory(0, 100));
        var oldSha = TestCaptures.Sha(old);
        foreach (var suffix in new[] { ".part", ".meta" })
            File.SetLastWriteTimeUtc(Path.Combine(incoming, oldSha + suffix), DateTime.UtcNow.AddHours(-2));

        // What interrupted steps leave: a manifest whose capture was never renamed into place, temporary files,
        // and the incoming files of a capture that was stored.
        var dateDirectory = Path.GetDirectoryName(stored.Path)!;
        var orphan = new string('a', 64);
        await File.WriteAllTextAsync(Path.Combine(dateDirectory, orphan + ".manifest.json"), "{}");
        await File.WriteAllTextAsync(Path.Combine(dateDirectory, orphan + ".manifest.json.tmp"), "{");
        await File.WriteAllTextAsync(Path.Combine(incoming, stored.Sha256 + ".meta"), "{}");
        await File.WriteAllTextAsync(Path.Combine(incoming, TestCaptures.Sha(fresh) + ".meta.tmp"), "{");

        var report = await fixture.Reopen().RecoverAsync();

        Assert.Equal(new RecoveryReport(Requeued: 0, AbandonedUploads: 1, RemovedLeftovers: 4, SkippedBusy: 0), report);
        var freshSha = TestCaptures.Sha(fresh);
        Assert.Equal(
            new[] { freshSha + ".meta", freshSha + ".part" },
            Directory.GetFiles(incoming).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(
            new[] { stored.Sha256 + ".manifest.json", stored.Sha256 + ".pcapng", stored.Sha256 + ".queued" },
            Directory.GetFiles(dateDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Recovery_skips_captures_held_by_a_session()
    {
        using var fixture = new StoreFixture(o => o.AbandonedUploadAge = TimeSpan.FromTicks(1));
        var data = TestCaptures.Pcapng(409);
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data.AsMemory(0, 100));

        var report = await fixture.Store.RecoverAsync();

        Assert.Equal(1, report.SkippedBusy);
        Assert.Equal(0, report.AbandonedUploads);
        await TestCaptures.SendAsync(session, data, data.Length);
        await session.CompleteAsync(session.Sha256);
    }

    /// <summary>
    /// After a crash: recover with a new store, upload again as a reconnecting probe would, and check the one
    /// consistent end state (the file, its manifest and marker; nothing in incoming; no temporary files).
    /// </summary>
    private static async Task ResumeAndCheckAsync(StoreFixture fixture, byte[] data, long? expectedOffset, int expectedSinkCalls)
    {
        var sha = TestCaptures.Sha(data);
        // Whatever the crash left: a part (resumable) or a whole stored capture, never a torn one.
        foreach (var path in fixture.StoredFiles())
            Assert.Equal(data, await File.ReadAllBytesAsync(path));
        foreach (var path in fixture.StoredFiles())
            Assert.True(File.Exists(Path.ChangeExtension(path, ".manifest.json")));

        var store = fixture.Reopen();
        await store.RecoverAsync();
        await using (var session = await store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)))
        {
            if (expectedOffset is { } offset)
                Assert.Equal(offset, session.Offset);
            if (!session.IsDuplicate)
            {
                Assert.True(session.Offset <= data.Length);
                await TestCaptures.SendAsync(session, data, data.Length, [1500]);
            }
            var stored = await session.CompleteAsync(sha);
            Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
            using var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(stored.ManifestPath));
            Assert.Equal(sha, manifest.RootElement.GetProperty("sha256").GetString());
            Assert.True(File.Exists(Path.ChangeExtension(stored.Path, ".queued")));
        }

        Assert.Single(fixture.StoredFiles());
        Assert.Single(fixture.FilesUnder("captures", "*.manifest.json"));
        Assert.Empty(fixture.FilesUnder("captures", "*.tmp"));
        Assert.Empty(fixture.FilesUnder("incoming"));
        Assert.Equal(expectedSinkCalls, fixture.Sink.CallsFor(sha));
    }
}

/// <summary>Runs Survey6.Server.Storage.CrashHelper in a child process; disposing kills it with SIGKILL.</summary>
internal sealed class CrashHelper : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly Process _process;
    private readonly string _input;

    private CrashHelper(Process process, string input)
    {
        _process = process;
        _input = input;
    }

    public static async Task<CrashHelper> StartAsync(StoreFixture fixture, byte[] data, string mode, params string[] extra)
    {
        var input = Path.Combine(fixture.Directory, "input.pcapng");
        await File.WriteAllBytesAsync(input, data);
        var start = new ProcessStartInfo(Tool.Dotnet())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "Survey6.Server.Storage.CrashHelper.dll"), mode, fixture.Directory, StoreFixture.Probe, input }.Concat(extra))
            start.ArgumentList.Add(arg);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the crash helper");
        return new CrashHelper(process, input);
    }

    /// <summary>The first stdout line starting with <paramref name="prefix"/>.</summary>
    public async Task<string> WaitForAsync(string prefix)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (await _process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
                return line;
        }
        var error = await _process.StandardError.ReadToEndAsync(timeout.Token);
        throw new InvalidOperationException($"crash helper ended without '{prefix}': {error}");
    }

    public async ValueTask DisposeAsync()
    {
        // Process.Kill is SIGKILL on Unix: the helper gets no chance to close, flush or clean up anything.
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        File.Delete(_input);
    }
}

using Microsoft.Extensions.Options;
using Survey6.Packets.Capture;

namespace Survey6.Server.Storage.Tests;

public class RejectionTests
{
    private static async Task<UploadRejectedException> Rejected(Func<Task> action, UploadRejection expected)
    {
        var e = await Assert.ThrowsAsync<UploadRejectedException>(action);
        Assert.Equal(expected, e.Rejection);
        return e;
    }

    [Fact]
    public async Task Wrong_digest_deletes_the_held_bytes()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(10);
        var other = TestCaptures.Pcapng(11);
        // Declares the other file's SHA: the bytes cannot match it.
        var header = TestCaptures.Header(data, manifest: "") with { Sha256 = TestCaptures.Sha(other) };

        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, header);
        await session.WriteAsync(0, data);
        await Rejected(() => session.CompleteAsync(header.Sha256).AsTask(), UploadRejection.DigestMismatch);

        Assert.Empty(fixture.FilesUnder("incoming"));
        Assert.Empty(fixture.StoredFiles());
        Assert.Empty(fixture.Sink.Calls);
        Assert.Equal(new HeldBytes(0, false), await fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, header.Sha256));
        await Assert.ThrowsAsync<InvalidOperationException>(() => session.WriteAsync(0, data).AsTask());
    }

    [Fact]
    public async Task Trailer_disagreeing_with_the_header_is_a_digest_mismatch()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(12);
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data);
        await Rejected(() => session.CompleteAsync(new string('0', 64)).AsTask(), UploadRejection.DigestMismatch);
        Assert.Empty(fixture.StoredFiles());
        Assert.Empty(fixture.FilesUnder("incoming"));
    }

    [Fact]
    public async Task Completing_short_is_a_size_mismatch_and_keeps_the_bytes()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(13);
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data.AsMemory(0, 100));

        var e = await Rejected(() => session.CompleteAsync(session.Sha256).AsTask(), UploadRejection.SizeMismatch);
        Assert.Equal(100, e.ExpectedOffset);

        // The session is still good: send the rest and complete.
        await TestCaptures.SendAsync(session, data, data.Length);
        var stored = await session.CompleteAsync(session.Sha256);
        Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
    }

    [Fact]
    public async Task Chunk_past_the_declared_size_is_a_size_mismatch()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(14);
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data.AsMemory(0, data.Length - 10));

        await Rejected(() => session.WriteAsync(session.Offset, new byte[11]).AsTask(), UploadRejection.SizeMismatch);
        Assert.Equal(data.Length - 10, new FileInfo(Path.Combine(fixture.Directory, "incoming", StoreFixture.Probe, session.Sha256 + ".part")).Length);
        await session.WriteAsync(session.Offset, data.AsMemory(data.Length - 10));
        await session.CompleteAsync(session.Sha256);
    }

    [Fact]
    public async Task Duplicate_declared_with_another_size_is_a_size_mismatch()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(15);
        await TestCaptures.UploadAsync(fixture.Store, data);
        await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data, manifest: "") with { Size = data.Length + 1 }).AsTask(),
            UploadRejection.SizeMismatch);
    }

    [Fact]
    public async Task Out_of_sequence_chunk_is_refused_and_the_session_goes_on()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(16);
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data.AsMemory(0, 1000));

        var ahead = await Rejected(() => session.WriteAsync(2000, data.AsMemory(2000, 10)).AsTask(), UploadRejection.ChunkSequence);
        Assert.Equal(1000, ahead.ExpectedOffset);
        var repeated = await Rejected(() => session.WriteAsync(0, data.AsMemory(0, 1000)).AsTask(), UploadRejection.ChunkSequence);
        Assert.Equal(1000, repeated.ExpectedOffset);

        Assert.Equal(1000, session.Offset);
        await TestCaptures.SendAsync(session, data, data.Length);
        var stored = await session.CompleteAsync(session.Sha256);
        Assert.Equal(data, await File.ReadAllBytesAsync(stored.Path));
    }

    [Fact]
    public async Task Oversized_capture_is_refused_at_the_start()
    {
        using var fixture = new StoreFixture(o => o.MaxCaptureBytes = 1000);
        var data = TestCaptures.Pcapng(17);
        await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data)).AsTask(), UploadRejection.TooLarge);
        Assert.Empty(fixture.FilesUnder("incoming"));
    }

    [Fact]
    public async Task Capture_stored_before_the_limit_dropped_is_still_acknowledged()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(23);
        await TestCaptures.UploadAsync(fixture.Store, data);

        var store = new CaptureStore(Options.Create(new CaptureStoreOptions { DataDirectory = fixture.Directory, MaxCaptureBytes = 1000 }), fixture.Sink);
        await using var session = await store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        Assert.True(session.IsDuplicate);
    }

    [Fact]
    public async Task Quota_counts_stored_captures_and_reserved_uploads()
    {
        var captures = Enumerable.Range(0, 3).Select(i => TestCaptures.Pcapng(20 + i, packets: 20, maxPacket: 1000)).ToArray();
        long largest = captures.Max(c => c.Length);
        // Room for two captures and their small manifests, not three.
        using var fixture = new StoreFixture(o =>
        {
            o.MaxCaptureBytes = largest;
            o.ProbeQuotaBytes = captures[0].Length + captures[1].Length + largest / 2;
        });

        await TestCaptures.UploadAsync(fixture.Store, captures[0]);
        // The second upload only begins: its declared size is reserved all the same.
        await using var pending = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(captures[1]));
        await pending.WriteAsync(0, captures[1].AsMemory(0, 10));

        var e = await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(captures[2])).AsTask(), UploadRejection.QuotaExceeded);
        Assert.Contains("quota", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(fixture.Directory, "incoming", StoreFixture.Probe, TestCaptures.Sha(captures[2]) + ".part")));

        // Other probes have their own quota; the reserved upload resumes and completes within it.
        await TestCaptures.UploadAsync(fixture.Store, captures[2], probe: "probe-02");
        await TestCaptures.SendAsync(pending, captures[1], captures[1].Length);
        await pending.CompleteAsync(pending.Sha256);
    }

    [Fact]
    public async Task Random_bytes_are_not_a_capture()
    {
        using var fixture = new StoreFixture();
        var data = new byte[5000];
        new Random(5).NextBytes(data);
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data);

        var e = await Rejected(() => session.CompleteAsync(session.Sha256).AsTask(), UploadRejection.NotACapture);
        Assert.Equal(0, e.ContentOffset);
        Assert.Contains("not a pcap or pcapng file", e.Message, StringComparison.Ordinal);
        Assert.Empty(fixture.FilesUnder("incoming"));
        Assert.Empty(fixture.StoredFiles());
        Assert.Empty(fixture.Sink.Calls);
    }

    [Fact]
    public async Task Truncated_pcapng_is_not_a_capture_at_the_cut_record()
    {
        using var fixture = new StoreFixture();
        var whole = TestCaptures.Pcapng(18);
        var data = whole[..(whole.Length - 50)];
        long expected;
        using (var reader = CaptureReader.Open(new MemoryStream(data)))
        {
            while (reader.TryRead(out _))
            {
            }
            expected = reader.Error!.Offset;
        }
        Assert.True(expected > 0);

        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data);
        var e = await Rejected(() => session.CompleteAsync(session.Sha256).AsTask(), UploadRejection.NotACapture);

        Assert.Equal(expected, e.ContentOffset);
        Assert.Contains("cut short", e.Message, StringComparison.Ordinal);
        Assert.Empty(fixture.FilesUnder("incoming"));
    }

    [Fact]
    public async Task Empty_file_is_not_a_capture()
    {
        using var fixture = new StoreFixture();
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header([]));
        await Rejected(() => session.CompleteAsync(session.Sha256).AsTask(), UploadRejection.NotACapture);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("zz00000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("00000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Malformed_SHA_is_invalid_SHA(string sha)
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(19);
        await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data) with { Sha256 = sha }).AsTask(), UploadRejection.InvalidSha);
        await Rejected(() => fixture.Store.GetHeldBytesAsync(StoreFixture.Probe, sha).AsTask(), UploadRejection.InvalidSha);

        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data));
        await session.WriteAsync(0, data);
        await Rejected(() => session.CompleteAsync(sha).AsTask(), UploadRejection.InvalidSha);
        // A malformed trailer leaves the upload intact.
        await session.CompleteAsync(session.Sha256);
    }

    [Theory]
    [InlineData("[1,2]", "the manifest is not a survey6 capture manifest (version 1): it is not a JSON object")]
    [InlineData("{\"unterminated\":", "the manifest is not a survey6 capture manifest (version 1): field 'unterminated': Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed")]
    [InlineData("42", "the manifest is not a survey6 capture manifest (version 1): it is not a JSON object")]
    [InlineData("{\"interfaces\":[\"eth0\"],\"packets\":40}", "the manifest is not a survey6 capture manifest (version 1): field 'interfaces[0]' is not an object")]
    public async Task Manifest_must_be_a_capture_manifest(string manifest, string reason)
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(20);
        var e = await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data, manifest)).AsTask(), UploadRejection.InvalidHeader);
        Assert.True(e.Message == reason, e.Message);
        Assert.Empty(fixture.FilesUnder("incoming"));
    }

    [Fact]
    public async Task Manifest_must_describe_the_capture_being_uploaded()
    {
        using var fixture = new StoreFixture();
        var data = TestCaptures.Pcapng(22);
        var other = TestCaptures.Pcapng(23);
        var e = await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data, TestCaptures.Manifest(other))).AsTask(), UploadRejection.InvalidHeader);
        Assert.Equal($"the manifest describes the file {TestCaptures.Sha(other)}, not this upload ({TestCaptures.Sha(data)})", e.Message);

        var wrongSize = System.Text.Json.Nodes.JsonNode.Parse(TestCaptures.Manifest(data))!;
        wrongSize["size"] = data.Length + 1;
        e = await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, TestCaptures.Header(data, wrongSize.ToJsonString())).AsTask(), UploadRejection.InvalidHeader);
        Assert.Equal($"the manifest describes a file of {data.Length + 1} bytes, the upload declares {data.Length}", e.Message);
        Assert.Empty(fixture.FilesUnder("incoming"));
        Assert.Empty(fixture.StoredFiles());
    }

    [Fact]
    public async Task Other_malformed_headers_are_invalid_header()
    {
        using var fixture = new StoreFixture(o => o.MaxManifestBytes = 100);
        var data = TestCaptures.Pcapng(21);
        var header = TestCaptures.Header(data);
        await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, header with { Size = -1 }).AsTask(), UploadRejection.InvalidHeader);
        await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, header with { WindowEnd = header.WindowStart.AddTicks(-1) }).AsTask(), UploadRejection.InvalidHeader);
        await Rejected(() => fixture.Store.BeginAsync(StoreFixture.Probe, header with { ManifestJson = $"{{\"x\":\"{new string('a', 100)}\"}}" }).AsTask(), UploadRejection.InvalidHeader);
        // No manifest at all is fine.
        await using var session = await fixture.Store.BeginAsync(StoreFixture.Probe, header with { ManifestJson = "" });
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("probe 1")]
    public async Task Unsafe_probe_ids_are_refused(string probeId)
    {
        using var fixture = new StoreFixture();
        Assert.False(CaptureStore.IsValidProbeId(probeId));
        var data = TestCaptures.Pcapng(22);
        await Assert.ThrowsAsync<ArgumentException>(() => fixture.Store.BeginAsync(probeId, TestCaptures.Header(data)).AsTask());
    }

    [Fact]
    public void Invalid_options_are_refused()
    {
        var bad = new CaptureStoreOptions
        {
            DataDirectory = "",
            MaxCaptureBytes = 0,
            ProbeQuotaBytes = -1,
            MaxManifestBytes = 0,
            SessionWaitTimeout = TimeSpan.FromSeconds(-1),
            AbandonedUploadAge = TimeSpan.Zero,
        };
        var result = new CaptureStoreOptionsValidator().Validate(null, bad);
        Assert.Equal(6, result.Failures!.Count());
        var e = Assert.Throws<OptionsValidationException>(() => new CaptureStore(Options.Create(bad), new RecordingSink()));
        Assert.Contains("MaxCaptureBytes", e.Message, StringComparison.Ordinal);
        Assert.True(new CaptureStoreOptionsValidator().Validate(null, new CaptureStoreOptions { DataDirectory = "/tmp/x" }).Succeeded);
    }
}

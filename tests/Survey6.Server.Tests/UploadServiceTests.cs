using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Grpc.Core;
using Survey6.Contracts;
using Survey6.Contracts.V1;
using Survey6.Ingest;
using Survey6.Probe.Upload;
using Survey6.Server.Uploads;
using static Survey6.Server.Tests.UploadTestSupport;
using UploadClient = Survey6.Contracts.V1.Upload.UploadClient;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>The Upload service on a real server (127.0.0.1, TLS), with probes joined through the real join path.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class UploadServiceTests : IAsyncLifetime
{
    private const long MaxCaptureBytes = 4 << 20;
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync(new Dictionary<string, string?>
    {
        ["Server:Uploads:MaxCaptureBytes"] = MaxCaptureBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Server:Uploads:SessionWaitTimeout"] = "00:00:02",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Data => _server.DataDirectory;

    [Fact]
    public async Task An_upload_is_stored_queued_and_recorded_once_and_a_repeat_is_acknowledged_as_a_duplicate()
    {
        using var probe = await JoinAsync("a");
        var data = Capture(1, 300 << 10);
        var sha = Sha(data);
        var path = Write(Path.Combine(_server.Root, "spool"), data);

        var result = await Uploader(probe).UploadAsync(path, Manifest(path, claimedProbeId: "someone-else"));
        Assert.Equal(sha, result.Ack.Sha256);
        Assert.Equal((ulong)data.Length, result.Ack.StoredBytes);
        Assert.False(result.Ack.Duplicate);
        Assert.True(File.Exists(path)); // the uploader never deletes

        var stored = Path.Combine(Data, "captures", probe.ProbeId, "2025-03-14", sha + ".pcapng");
        Assert.Equal(stored, Assert.Single(StoredCopies(Data, sha)));
        Assert.Equal(data, await File.ReadAllBytesAsync(stored));
        using (var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.ChangeExtension(stored, ".manifest.json"))))
        {
            // The server's fields come from the certificate and the bytes; the probe's claims stay nested.
            Assert.Equal(probe.ProbeId, manifest.RootElement.GetProperty("probe_id").GetString());
            Assert.Equal("someone-else", manifest.RootElement.GetProperty("probe_manifest").GetProperty("probe_id").GetString());
        }

        var queue = _server.Get<IIngestQueue>();
        Assert.Equal(1, (await queue.GetStatsAsync(default)).Pending);
        Assert.Equal([sha], QueuedShas(Data));
        Assert.Equal([(sha, probe.ProbeId, false)], UploadRows(Data));
        var record = Assert.Single(_server.Get<UploadRecords>().Recent(10));
        Assert.Equal(UploadTestSupport.BaseTime, record.WindowStart);
        Assert.Equal(stored, record.StoredPath);
        Assert.Contains(_server.Events.Recent(10), e => e.Kind == UploadEventKinds.CaptureStored && e.ProbeId == probe.ProbeId && e.Detail.StartsWith(sha, StringComparison.Ordinal));

        // A probe that did not ask first sends everything again: acknowledged as a duplicate, nothing stored or queued twice.
        var again = await RawUploadAsync(probe, WholeUpload(data));
        Assert.True(again.Duplicate);
        Assert.Equal(sha, again.Sha256);
        // One that asks is told the server has it and sends nothing.
        var asked = await Uploader(probe).UploadAsync(path, Manifest(path));
        Assert.True(asked.Ack.Duplicate);
        Assert.Equal(0, asked.BytesSent);

        Assert.Single(StoredCopies(Data, sha));
        Assert.Equal([sha], QueuedShas(Data));
        Assert.Equal([(sha, probe.ProbeId, false), (sha, probe.ProbeId, true)], UploadRows(Data));
        Assert.Empty(Directory.GetFiles(Path.Combine(Data, "incoming"), "*", SearchOption.AllDirectories));

        var lease = await queue.TryDequeueAsync("test", default);
        Assert.Equal(new CaptureEnqueued(sha, probe.ProbeId, stored, data.Length, lease!.Item.ReceivedAt, Path.ChangeExtension(stored, ".manifest.json")), lease.Item);
        Assert.Equal(1, _server.Counters.Get(UploadCounterNames.Stored));
        Assert.Equal(1, _server.Counters.Get(UploadCounterNames.Duplicate));
        Assert.Equal(data.Length, _server.Counters.Get(UploadCounterNames.BytesStored));
    }

    [Fact]
    public async Task Uploads_cut_at_random_points_resume_to_an_identical_file()
    {
        using var probe = await JoinAsync("a");
        var data = Capture(2, 1 << 20);
        var path = Write(Path.Combine(_server.Root, "spool"), data);
        var uploader = Uploader(probe);
        var random = new Random(7);
        long sent = 0;
        for (int cut = 0; cut < 4; cut++)
        {
            var at = random.Next(1, data.Length);
            using var cancel = new CancellationTokenSource();
            var progress = new Cutter(at, cancel);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => uploader.UploadAsync(path, Manifest(path), progress, cancellationToken: cancel.Token));
            var status = await new UploadClient(probe.Channel).GetUploadStatusAsync(new UploadStatusRequest { Sha256 = Sha(data) });
            Assert.False(status.Complete);
            Assert.InRange((long)status.BytesHeld, 0, data.Length);
            sent = Math.Max(sent, (long)status.BytesHeld);
        }

        var result = await uploader.UploadAsync(path, Manifest(path));
        Assert.False(result.Ack.Duplicate);
        Assert.True(result.ResumedFrom > 0, "the last attempt resumed from what the cut ones left");
        Assert.True(result.BytesSent < data.Length, $"sent {result.BytesSent} of {data.Length} bytes after the cuts");
        Assert.Equal(data, await File.ReadAllBytesAsync(Assert.Single(StoredCopies(Data, Sha(data)))));
        Assert.Equal([Sha(data)], QueuedShas(Data));
        Assert.True(_server.Counters.Get(UploadCounterNames.Interrupted) >= 1, string.Join(", ", _server.Counters.Snapshot()));
        Assert.Empty(Directory.GetFiles(Path.Combine(Data, "incoming"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Refusals_have_the_documented_status_codes_trailers_and_messages()
    {
        using var probe = await JoinAsync("a");
        var data = Capture(3, 100 << 10);
        var sha = Sha(data);

        // Bytes that do not hash to the declared SHA-256: the held bytes are dropped.
        var other = Sha(Capture(4, 1000));
        var e = await Refused(probe, WholeUpload(data, sha: other));
        AssertRefusal(e, StatusCode.FailedPrecondition, "digest-mismatch", "hash to " + sha);
        Assert.Equal(0ul, (await Status(probe, other)).BytesHeld);

        e = await Refused(probe, new UploadChunk { Header = Header(sha, MaxCaptureBytes + 1) });
        AssertRefusal(e, StatusCode.ResourceExhausted, "too-large", $"exceeds the limit of {MaxCaptureBytes} bytes");

        var junk = new byte[50_000];
        new Random(5).NextBytes(junk);
        e = await Refused(probe, WholeUpload(junk));
        AssertRefusal(e, StatusCode.InvalidArgument, "not-a-capture", "not a readable pcap or pcapng file");

        e = await Refused(probe, new UploadChunk { Header = Header(sha, data.Length) }, UploadTestSupport.Data(0, data.AsSpan(0, 1000)), UploadTestSupport.Data(2000, data.AsSpan(2000, 1000)));
        AssertRefusal(e, StatusCode.OutOfRange, "chunk-sequence", "chunk starts at 2000, the held bytes end at 1000");
        Assert.Equal("1000", e.Trailers.GetValue(UploadRejections.ExpectedOffsetTrailer));
        Assert.Equal(1000ul, (await Status(probe, sha)).BytesHeld); // kept for resuming

        e = await Refused(probe, new UploadChunk { Header = Header(sha, data.Length) }, UploadTestSupport.Data(1000, data.AsSpan(1000, 1000)), Trailer(new string('0', 64)));
        AssertRefusal(e, StatusCode.FailedPrecondition, "size-mismatch", "completed with 2000 of");

        e = await Refused(probe, new UploadChunk { Header = Header("not-a-sha", 10) });
        AssertRefusal(e, StatusCode.InvalidArgument, "invalid-sha", "not 64 hexadecimal digits");
        var statusError = await Assert.ThrowsAsync<RpcException>(() => Status(probe, "xyz"));
        AssertRefusal(statusError, StatusCode.InvalidArgument, "invalid-sha", "not 64 hexadecimal digits");

        e = await Refused(probe, new UploadChunk { Header = Header(sha, data.Length, "[1,2]") });
        AssertRefusal(e, StatusCode.InvalidArgument, "invalid-header", "the manifest is not a survey6 capture manifest (version 1): it is not a JSON object");

        e = await Refused(probe, UploadTestSupport.Data(0, data.AsSpan(0, 10)));
        AssertRefusal(e, StatusCode.InvalidArgument, "protocol", "the first message must be the header");
        e = await Refused(probe, new UploadChunk { Header = Header(sha, data.Length) }, UploadTestSupport.Data(2000, data.AsSpan(2000, 10)));
        AssertRefusal(e, StatusCode.InvalidArgument, "protocol", "ended without a trailer");
        e = await Refused(probe, new UploadChunk { Header = Header(sha, data.Length) }, new UploadChunk { Header = Header(sha, data.Length) });
        AssertRefusal(e, StatusCode.InvalidArgument, "protocol", "a second header");

        // The uploader reports a refusal as final, after one attempt, and keeps the file.
        var junkPath = Write(Path.Combine(_server.Root, "spool"), junk);
        var failure = await Assert.ThrowsAsync<CaptureUploadException>(() => Uploader(probe).UploadAsync(junkPath, WithoutManifest()));
        Assert.Equal("not-a-capture", failure.Rejection);
        Assert.False(failure.IsTransient);
        Assert.Equal(1, failure.Attempts);
        Assert.True(File.Exists(junkPath));

        Assert.Empty(StoredCopies(Data, sha));
        Assert.Empty(QueuedShas(Data));
        Assert.Equal(2, _server.Counters.Get(UploadCounterNames.RejectedPrefix + "not-a-capture"));
        Assert.Equal(3, _server.Counters.Get(UploadCounterNames.RejectedPrefix + "protocol"));
        Assert.Equal(1, _server.Counters.Get(UploadCounterNames.RejectedPrefix + "too-large"));

        // After all that, the capture still uploads, resuming from the 2010 bytes held.
        var path = Write(Path.Combine(_server.Root, "spool"), data);
        var result = await Uploader(probe).UploadAsync(path, Manifest(path));
        Assert.Equal(2010, result.ResumedFrom);
        Assert.Equal(data, await File.ReadAllBytesAsync(Assert.Single(StoredCopies(Data, sha))));
    }

    [Fact]
    public async Task A_manifest_that_breaks_the_contract_is_refused_with_the_reason_the_probe_reports_and_nothing_is_kept()
    {
        using var probe = await JoinAsync("a");
        var data = Capture(9, 100 << 10);
        var path = Write(Path.Combine(_server.Root, "spool"), data);
        var manifest = System.Text.Json.Nodes.JsonNode.Parse(ManifestJson(path))!.AsObject();
        manifest.Remove("frames");

        var failure = await Assert.ThrowsAsync<CaptureUploadException>(() =>
            Uploader(probe).UploadAsync(path, new UploadManifest(BaseTime, BaseTime.AddMinutes(10), manifest.ToJsonString())));
        Assert.Equal(
            $"the server refused {path}: upload refused: invalid-header: the manifest is not a survey6 capture manifest (version 1): missing required field 'frames'",
            failure.Message);
        Assert.Equal((UploadRejections.InvalidHeader, StatusCode.InvalidArgument, false, 1), (failure.Rejection, failure.StatusCode, failure.IsTransient, failure.Attempts));

        // A manifest of another file is refused the same way.
        var other = Write(Path.Combine(_server.Root, "other"), Capture(10, 1000));
        failure = await Assert.ThrowsAsync<CaptureUploadException>(() => Uploader(probe).UploadAsync(path, Manifest(other)));
        Assert.EndsWith($"invalid-header: the manifest describes the file {Sha(await File.ReadAllBytesAsync(other))}, not this upload ({Sha(data)})", failure.Message, StringComparison.Ordinal);

        Assert.True(File.Exists(path));
        Assert.Empty(StoredCopies(Data, Sha(data)));
        Assert.Empty(Directory.GetFiles(Path.Combine(Data, "incoming"), "*", SearchOption.AllDirectories));
        Assert.Empty(UploadRows(Data));
        Assert.Equal(2, _server.Counters.Get(UploadCounterNames.RejectedPrefix + UploadRejections.InvalidHeader));
    }

    [Fact]
    public async Task A_damaged_partial_copy_is_discarded_and_the_uploader_sends_the_whole_file_again()
    {
        using var probe = await JoinAsync("a");
        var data = Capture(6, 200 << 10);
        var sha = Sha(data);
        await Refused(probe, new UploadChunk { Header = Header(sha, data.Length) }, UploadTestSupport.Data(0, data.AsSpan(0, 50_000)));
        // As a power loss might leave it: the held bytes are not what was sent.
        var part = Path.Combine(Data, "incoming", probe.ProbeId, sha + ".part");
        var bytes = await File.ReadAllBytesAsync(part);
        bytes[1234] ^= 0xFF;
        await File.WriteAllBytesAsync(part, bytes);

        var result = await Uploader(probe).UploadAsync(Write(Path.Combine(_server.Root, "spool"), data), WithoutManifest());
        Assert.Equal(2, result.Attempts);
        Assert.Equal(0, result.ResumedFrom);
        Assert.Equal(data, await File.ReadAllBytesAsync(Assert.Single(StoredCopies(Data, sha))));
        Assert.Equal(1, _server.Counters.Get(UploadCounterNames.RejectedPrefix + "digest-mismatch"));
    }

    [Fact]
    public async Task A_probe_cannot_see_use_or_write_another_probes_uploads()
    {
        using var a = await JoinAsync("a");
        using var b = await JoinAsync("b");
        var data = Capture(8, 200 << 10);
        var sha = Sha(data);

        // A leaves a partial upload; B cannot see it, and B's upload of the same bytes is B's, stored under B.
        await Refused(a, new UploadChunk { Header = Header(sha, data.Length) }, UploadTestSupport.Data(0, data.AsSpan(0, 70_000)));
        Assert.Equal(70_000ul, (await Status(a, sha)).BytesHeld);
        Assert.Equal(0ul, (await Status(b, sha)).BytesHeld);
        var ack = await RawUploadAsync(b, WholeUpload(data, manifest: ManifestJson(Write(Path.Combine(_server.Root, "spool"), data), claimedProbeId: a.ProbeId)));
        Assert.False(ack.Duplicate);
        Assert.Equal(Path.Combine(Data, "captures", b.ProbeId, "2025-03-14", sha + ".pcapng"), Assert.Single(StoredCopies(Data, sha)));
        Assert.Equal(70_000ul, (await Status(a, sha)).BytesHeld);
        Assert.False((await Status(a, sha)).Complete);
        Assert.Equal([(sha, b.ProbeId, false)], UploadRows(Data));

        // A certificate naming A, but not issued by this server, gets nowhere.
        using var forged = ForeignCertificate(a.ProbeId);
        var client = new UploadClient(_server.Channel(forged));
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.GetUploadStatusAsync(new UploadStatusRequest { Sha256 = sha }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
        using (var call = client.Upload())
        {
            try
            {
                foreach (var message in WholeUpload(data))
                    await call.RequestStream.WriteAsync(message);
            }
            catch (Exception ex) when (ex is RpcException or InvalidOperationException)
            {
            }

            Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync)).StatusCode);
        }

        // Without a certificate, nothing either.
        var anonymous = await Assert.ThrowsAsync<RpcException>(() => new UploadClient(_server.Channel()).GetUploadStatusAsync(new UploadStatusRequest { Sha256 = sha }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        Assert.Single(StoredCopies(Data, sha));
        Assert.False(Directory.Exists(Path.Combine(Data, "captures", a.ProbeId)));
    }

    [Fact]
    public async Task Cli_probe_upload_prints_the_ack_and_server_uploads_lists_it()
    {
        var token = _server.CreateToken();
        var stateDir = Path.Combine(_server.Root, "probe-cli");
        var (status, _, _) = await CliAsync("probe", "join", "--server", _server.GrpcUrl.ToString().TrimEnd('/'), "--token", token, "--ca-hash", _server.Pki.Authority.Pin, "--state-dir", stateDir);
        Assert.Equal(0, status);
        var data = Capture(9, 150 << 10);
        var path = Write(Path.Combine(_server.Root, "spool"), data);

        var (uploadStatus, output, error) = await CliAsync("probe", "upload", path, "--state-dir", stateDir, "--rate", "4M");
        Assert.True(uploadStatus == 0, error);
        Assert.Contains($"sha256: {Sha(data)}\n", output, StringComparison.Ordinal);
        Assert.Contains($"stored_bytes: {data.Length}\n", output, StringComparison.Ordinal);
        Assert.Contains("duplicate: false\n", output, StringComparison.Ordinal);
        Assert.True(File.Exists(path));

        var (listStatus, json, _) = await CliAsync("server", "uploads", "--json", "--data-dir", Data);
        Assert.Equal(0, listStatus);
        var upload = JsonDocument.Parse(json).RootElement.EnumerateArray().Single();
        Assert.Equal(Sha(data), upload.GetProperty("sha256").GetString());
        Assert.Equal(data.Length, upload.GetProperty("size_bytes").GetInt64());
        Assert.False(upload.GetProperty("duplicate").GetBoolean());
        var (_, table, _) = await CliAsync("server", "uploads", "--data-dir", Data);
        Assert.Contains(Sha(data), table, StringComparison.Ordinal);

        var junk = Path.Combine(_server.Root, "junk.pcapng");
        await File.WriteAllBytesAsync(junk, new byte[5000]);
        var (junkStatus, _, junkError) = await CliAsync("probe", "upload", junk, "--state-dir", stateDir);
        Assert.Equal(1, junkStatus);
        Assert.Contains("not-a-capture", junkError, StringComparison.Ordinal);
        var (missingStatus, _, missingError) = await CliAsync("probe", "upload", path, "--state-dir", Path.Combine(_server.Root, "nobody"));
        Assert.Equal(Survey6.Cli.ExitCodes.NotFound, missingStatus);
        Assert.Contains("does not exist", missingError, StringComparison.Ordinal);
    }

    private async Task<Probe.Upload.ProbeConnection> JoinAsync(string name) =>
        await UploadTestSupport.JoinAsync(_server.GrpcUrl, _server.CreateToken(), _server.Pki.Authority.Pin, Path.Combine(_server.Root, "probe-" + name));

    private static async Task<UploadStatus> Status(Probe.Upload.ProbeConnection probe, string sha) =>
        await new UploadClient(probe.Channel).GetUploadStatusAsync(new UploadStatusRequest { Sha256 = sha });

    private static Task<RpcException> Refused(Probe.Upload.ProbeConnection probe, params UploadChunk[] messages) =>
        Assert.ThrowsAsync<RpcException>(() => RawUploadAsync(probe, messages));

    /// <summary>A client certificate naming <paramref name="probeId"/>, from a CA this server does not know.</summary>
    private static X509Certificate2 ForeignCertificate(string probeId)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=survey6 CA impostor", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + probeId, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), [0x42, 1, 2, 3]);
        return ServerHarness.WithKey(issued, key);
    }

    private static void AssertRefusal(RpcException e, StatusCode code, string rejection, string detail)
    {
        Assert.Equal(code, e.StatusCode);
        Assert.Equal(rejection, e.Trailers.GetValue(UploadRejections.Trailer));
        Assert.StartsWith($"upload refused: {rejection}: ", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(detail, e.Status.Detail, StringComparison.Ordinal);
    }

    private static async Task<(int Status, string Output, string Error)> CliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var status = await Cli.RootCommandFactory.Create().Parse(args).InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = error });
        return (status, output.ToString().Replace("\r\n", "\n", StringComparison.Ordinal), error.ToString());
    }

    /// <summary>Cancels the upload once it has handed at least <c>at</c> bytes to the connection.</summary>
    private sealed class Cutter(long at, CancellationTokenSource cancel) : IProgress<long>
    {
        public void Report(long value)
        {
            if (value >= at)
                cancel.Cancel();
        }
    }
}

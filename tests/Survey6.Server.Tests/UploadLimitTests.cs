using System.Collections.Concurrent;
using System.Security.Cryptography;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Survey6.Contracts;
using Survey6.Contracts.V1;
using Survey6.Server.Metrics;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;
using Xunit.Abstractions;
using static Survey6.Server.Tests.UploadTestSupport;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// What a probe's certificate lets it do to the server's disk: partial uploads by the thousand, captures dated
/// anywhere in time, uploads into a full disk. Each is bounded, and each refusal tells the probe why.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class UploadLimitTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Three_thousand_partial_uploads_leave_at_most_the_cap_and_the_probe_can_still_upload()
    {
        const int Cap = 8;
        await using var server = await ServerHarness.StartAsync(new Dictionary<string, string?> { ["Server:Uploads:MaxPartialUploadsPerProbe"] = $"{Cap}" });
        using var probe = await JoinAsync(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, Path.Combine(server.Root, "probe"));

        // Declare 2 bytes, send 1, end the call: each leaves a partial upload to resume.
        var outcomes = new ConcurrentDictionary<string, int>();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref next) < 3_000)
            {
                var sha = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
                var e = await Assert.ThrowsAsync<RpcException>(() => RawUploadAsync(probe, new UploadChunk { Header = Header(sha, 2) }, UploadTestSupport.Data(0, [0x0a])));
                outcomes.AddOrUpdate($"{e.StatusCode} {e.Trailers.GetValue(UploadRejections.Trailer)}", 1, (_, n) => n + 1);
            }
        })));

        output.WriteLine(string.Join(", ", outcomes.Select(o => $"{o.Value} x {o.Key}")));
        var incoming = Path.Combine(server.DataDirectory, "incoming", probe.ProbeId);
        var parts = Directory.GetFiles(incoming, "*.part").Length;
        var metas = Directory.GetFiles(incoming, "*.meta").Length;
        Assert.True(parts <= Cap && metas <= Cap, $"{parts} partial uploads and {metas} meta files left in {incoming}");
        Assert.Equal(3_000, outcomes.Values.Sum());
        Assert.True(server.Counters.Get(UploadCounterNames.PartialUploadsEvicted) >= 3_000 - Cap);

        // The probe is not stuck: a real capture still goes through.
        var data = Capture(11, 32 << 10);
        var ack = await RawUploadAsync(probe, WholeUpload(data));
        Assert.Equal(Sha(data), ack.Sha256);
    }

    [Theory]
    [InlineData("9999-12-31T00:00:00Z", "9999-12-31T00:10:00Z", "after the server's clock")]
    [InlineData("1971-01-01T00:00:00Z", "1971-01-01T00:10:00Z", "before the server's clock")]
    public async Task A_capture_window_implausibly_far_from_the_servers_clock_is_refused_with_the_reason(string start, string end, string reason)
    {
        await using var server = await ServerHarness.StartAsync();
        using var probe = await JoinAsync(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, Path.Combine(server.Root, "probe"));
        var data = Capture(12, 16 << 10);
        var upload = WholeUpload(data);
        upload[0].Header.WindowStart = Timestamp.FromDateTimeOffset(DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture));
        upload[0].Header.WindowEnd = Timestamp.FromDateTimeOffset(DateTimeOffset.Parse(end, System.Globalization.CultureInfo.InvariantCulture));

        var e = await Assert.ThrowsAsync<RpcException>(() => RawUploadAsync(probe, upload));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(UploadRejections.InvalidHeader, e.Trailers.GetValue(UploadRejections.Trailer));
        Assert.Contains(reason, e.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(StoredCopies(server.DataDirectory, Sha(data)));
        Assert.Empty(Directory.GetFiles(Path.Combine(server.DataDirectory, "incoming"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Partial_uploads_left_alone_expire_while_the_server_runs()
    {
        await using var server = await ServerHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Server:Uploads:AbandonedUploadAge"] = "01:00:00",
            ["Server:Uploads:AbandonedUploadSweepInterval"] = "00:01:00",
        });
        using var probe = await JoinAsync(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, Path.Combine(server.Root, "probe"));
        var sha = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        await Assert.ThrowsAsync<RpcException>(() => RawUploadAsync(probe, new UploadChunk { Header = Header(sha, 2) }, UploadTestSupport.Data(0, [0x0a])));
        var part = Path.Combine(server.DataDirectory, "incoming", probe.ProbeId, sha + ".part");
        Assert.True(File.Exists(part));

        server.Time.Advance(TimeSpan.FromMinutes(30));
        await ProbeChanges.EventuallyAsync(() => server.Counters.Get(UploadCounterNames.AbandonedSweeps) >= 1, "a sweep of partial uploads");
        Assert.True(File.Exists(part)); // not old enough yet

        server.Time.Advance(TimeSpan.FromMinutes(31));
        await ProbeChanges.EventuallyAsync(() => !File.Exists(part), "the abandoned partial upload deleted");
        Assert.False(File.Exists(Path.ChangeExtension(part, ".meta")));
    }

    [Fact]
    public async Task Below_the_free_disk_floor_uploads_are_refused_with_the_reason_until_space_returns()
    {
        using var disk = new Tmpfs("64m");
        var root = TempDirectory.Create();
        try
        {
            await using var server = await ServerHarness.StartAsync(disk.Path, new Dictionary<string, string?> { ["Server:Uploads:MinFreeDiskBytes"] = $"{32 << 20}" });
            using var probe = await JoinAsync(server.GrpcUrl, server.CreateToken(), server.Pki.Authority.Pin, Path.Combine(root, "probe"));
            // What health, /healthz and the metrics report (one floor): degraded exactly while uploads are refused.
            var health = server.Get<DataDiskHealth>();
            Assert.False(health.Read().BelowFloor);

            // Something else fills the disk until less than the floor is free.
            var filler = Path.Combine(disk.Path, "filler");
            await File.WriteAllBytesAsync(filler, new byte[40 << 20]);
            var data = Capture(13, 16 << 10);
            var e = await Assert.ThrowsAsync<RpcException>(() => RawUploadAsync(probe, WholeUpload(data)));
            output.WriteLine(e.Status.Detail);
            Assert.Equal(StatusCode.Unavailable, e.StatusCode); // transient: the probe keeps its file and retries later
            Assert.Equal(UploadRejections.ServerDiskLow, e.Trailers.GetValue(UploadRejections.Trailer));
            Assert.Contains("free-disk floor", e.Status.Detail, StringComparison.Ordinal);
            Assert.True(health.Read().BelowFloor);
            Assert.Empty(StoredCopies(server.DataDirectory, Sha(data)));
            Assert.Empty(Directory.GetFiles(Path.Combine(server.DataDirectory, "incoming"), "*", SearchOption.AllDirectories));

            File.Delete(filler);
            var ack = await RawUploadAsync(probe, WholeUpload(data));
            Assert.Equal(Sha(data), ack.Sha256);
            Assert.False(health.Read().BelowFloor);
        }
        finally
        {
            TempDirectory.Delete(root);
        }
    }

    [Theory]
    [InlineData("MinFreeDiskBytes", "-1")]
    [InlineData("MaxPartialUploadsPerProbe", "0")]
    [InlineData("AbandonedUploadSweepInterval", "00:00:00")]
    [InlineData("MaxWindowAhead", "-00:01:00")]
    public async Task An_invalid_upload_limit_stops_the_start_with_its_name(string setting, string value)
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => ServerHarness.StartAsync(new Dictionary<string, string?> { ["Server:Uploads:" + setting] = value }));
        Assert.Contains(setting, e.Message, StringComparison.Ordinal);
    }
}

using Survey6.Probe.Spool;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>Spool files are closed by size and by age, and no frame is lost or doubled across files.</summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class RotationTests
{
    [Fact]
    public async Task Files_rotate_by_size()
    {
        const int RotateSize = 16 * 1024, Pings = 40, PayloadSize = 1000;
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface,
            ("Probe:Spool:RotateSizeBytes", RotateSize.ToString())));
        probe.RequireCapturing();
        lab.Ping(lab.HostAddress, Pings, size: PayloadSize);
        await probe.WaitForQueueDrainedAsync(atLeast: 2 * Pings);
        await probe.StopAsync();

        var files = SpoolContents.Read(probe.Spool.Root);
        var bySize = files.Where(f => f.CloseReason == "size").ToList();
        Assert.True(bySize.Count >= 4, $"{bySize.Count} files closed by size");
        foreach (var file in bySize)
        {
            // Closed before the next frame (about 1.1 KB) would have passed the limit; the ISB comes on top.
            var isbBytes = 200;
            Assert.InRange(file.Size, RotateSize - 1200, RotateSize + isbBytes);
        }

        var frames = files.SelectMany(f => f.Frames).ToList();
        Assert.Equal(Pings, frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.Equal(Pings, frames.Count(f => f.IsEchoReply(lab.HostAddress, lab.NamespaceAddress)));
        var sequences = files.Select(f => Sequence(f.Path)).ToList();
        Assert.Equal(Enumerable.Range((int)sequences[0], sequences.Count).Select(i => (long)i), sequences);
        foreach (var file in files)
            CaptureTests.AssertDescribes(file, lab.HostInterface);
        CaptureTests.AssertTsharkReadsAll(files);
    }

    [Fact]
    public async Task Files_rotate_by_age_even_when_idle()
    {
        using var lab = new NetworkLab();
        using var state = new TempDirectory();
        await using var probe = await ProbeHarness.StartAsync(ProbeHarness.Settings(state.Path, lab.HostInterface,
            ("Probe:Spool:RotateAge", "00:00:01")));
        probe.RequireCapturing();
        lab.Ping(lab.HostAddress, 8, interval: 0.4);
        // Idle now: the open file is closed by age without another frame arriving.
        await ProbeHarness.WaitUntilAsync(() => probe.Writer.CurrentFile is null, TimeSpan.FromSeconds(5), "the idle file to be closed by age");
        await probe.StopAsync();

        var files = SpoolContents.Read(probe.Spool.Root);
        var byAge = files.Where(f => f.CloseReason == "age").ToList();
        Assert.True(byAge.Count >= 3, $"{byAge.Count} files closed by age");
        foreach (var file in byAge.Where(f => f.Frames.Count > 0))
        {
            var span = TimeSpan.FromTicks((file.Frames[^1].TimestampNanoseconds - file.Frames[0].TimestampNanoseconds) / 100);
            Assert.True(span < TimeSpan.FromSeconds(1.5), $"{Path.GetFileName(file.Path)} spans {span}");
        }

        var frames = files.SelectMany(f => f.Frames).ToList();
        Assert.Equal(8, frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.Equal(8, frames.Count(f => f.IsEchoReply(lab.HostAddress, lab.NamespaceAddress)));
        CaptureTests.AssertTsharkReadsAll(files);
    }

    private static long Sequence(string path)
    {
        Assert.True(SpoolFileName.TryParse(Path.GetFileName(path), out _, out var sequence));
        return sequence;
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using Survey6.Packets.Capture;
using Survey6.Probe.Capture;
using Survey6.Probe.Spool;
using Survey6.Probe.Tests.Support;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>A file left open by a crash is cut to its last complete block, closed, published and kept.</summary>
[Trait(TestCategory.Name, TestCategory.Capture)]
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Killed_daemons_partial_file_is_repaired_at_restart_and_keeps_its_frames()
    {
        const int Pings = 10;
        using var lab = new NetworkLab();
        using var dir = new TempDirectory();
        var stateDirectory = dir.Combine("state");
        var config = DaemonProcess.WriteConfig(dir.Path, lab.HostInterface);
        string partial;
        using (var daemon = await DaemonProcess.StartAsync(config, stateDirectory))
        {
            Assert.Equal("capturing", daemon.Status().State);
            lab.Ping(lab.HostAddress, Pings);
            // In the open file itself: the kernel hands frames over a read timeout later, so a frame count that other
            // traffic (neighbour discovery) helps to reach says nothing about the last echo.
            string? open = null;
            await ProbeHarness.WaitUntilAsync(
                () => (open = daemon.Status().Spool.CurrentFile) is not null && EchoesIn(Path.Combine(stateDirectory, "spool", open), lab) == 2 * Pings,
                TimeSpan.FromSeconds(10), "the echoes to be written");
            partial = Path.Combine(stateDirectory, "spool", open!);
            daemon.Kill();
        }

        // SIGKILL left the file open and without statistics; add the front of a block whose write was
        // cut short, as a crash in the middle of a write leaves it.
        Assert.True(File.Exists(partial));
        var intact = new FileInfo(partial).Length;
        await using (var file = new FileStream(partial, FileMode.Append))
            file.Write([6, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2]);

        using (var daemon = await DaemonProcess.StartAsync(config, stateDirectory))
        {
            Assert.Equal("capturing", daemon.Status().State);
            Assert.Contains("Repaired", daemon.Log, StringComparison.Ordinal);
            daemon.Terminate();
        }

        Assert.False(File.Exists(partial));
        var repaired = SpoolContents.ReadFile(partial[..^".partial".Length]);
        Assert.Equal(Pings, repaired.Frames.Count(f => f.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress)));
        Assert.Equal(Pings, repaired.Frames.Count(f => f.IsEchoReply(lab.HostAddress, lab.NamespaceAddress)));
        Assert.True(repaired.Manifest.GetProperty("repaired").GetBoolean());
        Assert.Equal("repaired", repaired.CloseReason);
        Assert.Equal(repaired.Sha256, repaired.Manifest.GetProperty("sha256").GetString());
        var isb = Assert.Single(repaired.Statistics);
        Assert.Equal(intact, isb.FileOffset); // cut exactly where the torn block began
        Assert.Equal((ulong)repaired.Frames.Count, isb.UserDelivered);
        Assert.Null(isb.InterfaceReceived); // a crash loses the window's counters: unknown, not zero
        Assert.Contains("cut at offset", PcapngMetadata.CommentValue(isb, PcapngMetadata.Repaired), StringComparison.Ordinal);
        Assert.Equal("p-test", repaired.Metadata[PcapngMetadata.ProbeId]);
        CaptureTests.AssertTsharkReads(repaired.Path, repaired.Frames.Count);
    }

    /// <summary>The echo requests and replies in a spool file still being written, as far as its complete blocks go.</summary>
    private static int EchoesIn(string path, NetworkLab lab)
    {
        if (!File.Exists(path))
            return 0;
        using var reader = CaptureReader.Open(path);
        int echoes = 0;
        while (reader.TryRead(out var frame))
        {
            var info = SpoolContents.Classify(Path.GetFileName(path), frame.Data, frame.LinkType, frame.TimestampNanoseconds, frame.OriginalLength);
            if (info.IsEchoRequest(lab.NamespaceAddress, lab.HostAddress) || info.IsEchoReply(lab.HostAddress, lab.NamespaceAddress))
                echoes++;
        }
        return echoes;
    }

    [Theory]
    [InlineData(0)] // ended on a block boundary
    [InlineData(7)] // torn block header
    [InlineData(40)] // torn block body
    public void Torn_files_are_cut_to_their_last_complete_block(int tornBytes)
    {
        using var dir = new TempDirectory();
        var spool = new SpoolDirectory(dir.Path, NullLogger<SpoolDirectory>.Instance);
        spool.Recover();
        var path = Path.Combine(dir.Path, SpoolFileName.Capture(DateTimeOffset.UtcNow, 7) + SpoolFileName.PartialSuffix);
        var good = WritePartial(path, frames: 5);
        if (tornBytes > 0)
        {
            var next = new byte[tornBytes];
            next[0] = 6; // an EPB's type, then whatever had reached the disk
            using var stream = new FileStream(path, FileMode.Append);
            stream.Write(next);
        }

        Assert.Equal(RepairOutcome.Repaired, spool.RecoverPartial(path));

        var file = Assert.Single(spool.ClosedFiles());
        Assert.Equal(7, file.Sequence);
        Assert.Equal(5, file.Frames);
        var capture = SpoolContents.ReadFile(file.Path);
        Assert.Equal(5, capture.Frames.Count);
        Assert.Equal(good, Assert.Single(capture.Statistics).FileOffset);
        Assert.Equal(file.Sha256, capture.Sha256);
        CaptureTests.AssertTsharkReads(file.Path, 5);
    }

    [Fact]
    public void Startup_recovery_publishes_closed_but_unrenamed_files_rebuilds_missing_manifests_and_keeps_unreadable_ones()
    {
        using var dir = new TempDirectory();
        var start = DateTimeOffset.UtcNow;
        // Closed (statistics written) but the process died before the rename.
        var closed = Path.Combine(dir.Path, SpoolFileName.Capture(start, 1) + SpoolFileName.PartialSuffix);
        WritePartial(closed, frames: 3, close: true);
        // Renamed but the manifest was never written.
        var unlisted = Path.Combine(dir.Path, SpoolFileName.Capture(start, 2));
        WritePartial(unlisted, frames: 2, close: true);
        // Only the first bytes of a section header reached the disk.
        var empty = Path.Combine(dir.Path, SpoolFileName.Capture(start, 3) + SpoolFileName.PartialSuffix);
        File.WriteAllBytes(empty, [0x0A, 0x0D, 0x0D, 0x0A, 0x1C]);
        // A manifest whose capture was already acknowledged and deleted.
        File.WriteAllText(Path.Combine(dir.Path, SpoolFileName.ManifestFor(SpoolFileName.Capture(start, 0))), "{}");

        var spool = new SpoolDirectory(dir.Path, NullLogger<SpoolDirectory>.Instance);
        var recovery = spool.Recover();

        Assert.Equal(new SpoolRecovery(Repaired: 0, AlreadyClosed: 1, Unrepairable: 1, ManifestsRebuilt: 1, OrphanManifestsRemoved: 1), recovery);
        Assert.Equal([1L, 2L], spool.ClosedFiles().Select(f => f.Sequence));
        Assert.Equal([3L, 2L], spool.ClosedFiles().Select(f => f.Frames));
        Assert.True(File.Exists(Path.Combine(dir.Path, "damaged", Path.GetFileName(empty))));
        var first = SpoolContents.ReadFile(spool.ClosedFiles()[0].Path);
        Assert.Single(first.Statistics); // nothing appended to a file that was already closed
        Assert.Equal("unknown", first.CloseReason);
        // The rebuilt manifest describes the file as it is on disk, and the spool counts both.
        var rebuilt = spool.ClosedFiles()[1];
        Assert.Equal(new FileInfo(unlisted).Length, rebuilt.Size);
        Assert.Equal(new FileInfo(SpoolFileName.ManifestFor(unlisted)).Length, rebuilt.ManifestSize);
        Assert.Equal(SpoolContents.ReadFile(unlisted).Sha256, rebuilt.Sha256);
        // The next file never reuses a number.
        Assert.Equal(4, spool.NextFile(start).Sequence);
    }

    [Fact]
    public void Complete_deletes_a_file_and_its_manifest_only_once()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, SpoolFileName.Capture(DateTimeOffset.UtcNow, 1) + SpoolFileName.PartialSuffix);
        WritePartial(path, frames: 1, close: true);
        var spool = new SpoolDirectory(dir.Path, NullLogger<SpoolDirectory>.Instance);
        spool.Recover();
        var file = Assert.Single(spool.ClosedFiles());
        var freed = 0;
        spool.SpaceFreed += () => freed++;

        Assert.True(spool.Complete(file));
        Assert.False(spool.Complete(file));
        Assert.False(File.Exists(file.Path));
        Assert.False(File.Exists(file.ManifestPath));
        Assert.Empty(spool.ClosedFiles());
        Assert.Equal(0, spool.ClosedBytes);
        Assert.Equal(1, freed);
    }

    /// <summary>A spool-style file (SHB, IDB, EPBs, optionally the closing ISB); returns its length before any ISB.</summary>
    internal static long WritePartial(string path, int frames, bool close = false)
    {
        using var stream = new FileStream(path, FileMode.CreateNew);
        using var writer = new PcapngWriter(stream, new PcapngSectionInfo
        {
            Metadata = [new(PcapngMetadata.ProbeId, "p-test"), new(PcapngMetadata.Labels, "site=lab")],
        }, leaveOpen: true);
        writer.AddInterface(new PcapngInterfaceInfo(LinkType.Ethernet, 262144) { Name = "veth0", Filter = CaptureOptions.DefaultFilter });
        var frame = TestFrames.EchoRequest();
        for (var i = 0; i < frames; i++)
            writer.WritePacket(0, 1_700_000_000_000_000_000 + i * 1000L, frame, (uint)frame.Length);
        writer.Flush();
        var length = stream.Length;
        if (close)
        {
            writer.WriteInterfaceStatistics(0, 1_700_000_001_000_000_000, new PcapngInterfaceStatistics
            {
                StartTimeNanoseconds = 1_700_000_000_000_000_000,
                EndTimeNanoseconds = 1_700_000_001_000_000_000,
                InterfaceReceived = (ulong)frames,
                UserDelivered = (ulong)frames,
                OsDropped = 0,
                InterfaceDropped = 0,
                Comment = PcapngMetadata.FormatDrops(0, 0),
            });
        }

        return length;
    }
}

/// <summary>Frames for tests that do not capture.</summary>
internal static class TestFrames
{
    /// <summary>Ethernet + IPv6 + ICMPv6 echo request, 2001:db8::2 to 2001:db8::1.</summary>
    public static byte[] EchoRequest(int padding = 0)
    {
        var ip6 = Program.EchoRequest(System.Net.IPAddress.Parse("2001:db8::2"), System.Net.IPAddress.Parse("2001:db8::1"), 1);
        var frame = new byte[14 + ip6.Length + padding];
        frame[12] = 0x86;
        frame[13] = 0xDD;
        ip6.CopyTo(frame, 14);
        return frame;
    }
}

using System.Globalization;
using Survey6.Packets.Capture;

namespace Survey6.Packets.Tests.Capture;

/// <summary>A copy of everything a <see cref="CaptureFrame"/> says, with the data reduced to a hash, for comparisons.</summary>
internal readonly record struct FrameRecord(
    long FileOffset,
    FrameKind Kind,
    bool HasTimestamp,
    long TimestampNanoseconds,
    uint OriginalLength,
    int CapturedLength,
    ulong DataHash,
    int InterfaceId,
    int SectionIndex,
    LinkType LinkType,
    uint EnterpriseNumber)
{
    public static FrameRecord From(in CaptureFrame frame) => new(
        frame.FileOffset, frame.Kind, frame.HasTimestamp, frame.TimestampNanoseconds, frame.OriginalLength,
        frame.Data.Length, Hash(frame.Data), frame.InterfaceId, frame.SectionIndex, frame.LinkType, frame.EnterpriseNumber);

    /// <summary>frame.time_epoch as tshark prints it (empty without a timestamp).</summary>
    public string EpochText => HasTimestamp ? FormatEpoch(TimestampNanoseconds) : "";

    public static string FormatEpoch(long nanoseconds) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Math.DivRem(nanoseconds, 1_000_000_000L).Quotient}.{Math.DivRem(nanoseconds, 1_000_000_000L).Remainder:D9}");

    // FNV-1a: enough to tell frames apart in tests.
    public static ulong Hash(ReadOnlySpan<byte> data)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in data)
            hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }
}

internal static class CaptureReading
{
    public static List<FrameRecord> ReadAll(CaptureReader reader)
    {
        var frames = new List<FrameRecord>();
        while (reader.TryRead(out var frame))
            frames.Add(FrameRecord.From(frame));
        // Once finished, it stays finished.
        Assert.False(reader.TryRead(out _));
        return frames;
    }

    public static (List<FrameRecord> Frames, CaptureError? Error) ReadAll(byte[] bytes, int count = -1, int bufferSize = CaptureReader.DefaultBufferSize)
    {
        using var reader = CaptureReader.Open(new MemoryStream(bytes, 0, count < 0 ? bytes.Length : count, writable: false), false, bufferSize);
        var frames = ReadAll(reader);
        return (frames, reader.Error);
    }
}

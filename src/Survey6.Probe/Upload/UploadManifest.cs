using Survey6.Packets.Capture;

namespace Survey6.Probe.Upload;

/// <summary>
/// What the probe declares about a capture besides its bytes: the capture window (its start date names the
/// server's folder) and the spool's manifest JSON (an object, or empty for none), stored by the server as sent.
/// </summary>
public sealed record UploadManifest(DateTimeOffset WindowStart, DateTimeOffset WindowEnd, string Json = "")
{
    /// <summary>
    /// The window from the first and last frame timestamps in the file, for a capture that comes without one
    /// (e.g. <c>survey6 probe upload</c> of an arbitrary file). A file without timestamped frames gets its
    /// modification time for both ends.
    /// </summary>
    public static UploadManifest FromCapture(string path, string json = "")
    {
        long first = long.MaxValue, last = long.MinValue;
        using (var reader = CaptureReader.Open(path))
        {
            while (reader.TryRead(out var frame))
            {
                if (!frame.HasTimestamp)
                    continue;
                first = Math.Min(first, frame.TimestampNanoseconds);
                last = Math.Max(last, frame.TimestampNanoseconds);
            }
        }

        if (first > last)
        {
            var modified = new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero);
            return new UploadManifest(modified, modified, json);
        }

        return new UploadManifest(FromNanoseconds(first), FromNanoseconds(last), json);
    }

    private static DateTimeOffset FromNanoseconds(long nanoseconds) =>
        DateTimeOffset.UnixEpoch.AddTicks(nanoseconds / (1_000_000_000 / TimeSpan.TicksPerSecond));
}

using Survey6.Contracts.Manifests;
using Survey6.Packets.Capture;

namespace Survey6.Probe.Upload;

/// <summary>
/// What the probe declares about a capture besides its bytes: the capture window (its start's UTC date names the
/// server's folder) and the capture's manifest (<see cref="CaptureManifest"/> JSON; empty for none), which the server
/// checks and keeps whole.
/// </summary>
public sealed record UploadManifest(DateTimeOffset WindowStart, DateTimeOffset WindowEnd, string Json = "")
{
    /// <summary>
    /// The declaration for a manifest: its window, or <paramref name="fallback"/> for a manifest without one (a file
    /// without frames or counters).
    /// </summary>
    public static UploadManifest For(CaptureManifest manifest, string json, DateTimeOffset fallback)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var from = manifest.WindowStartNs is { } s ? FromNanoseconds(s) : fallback;
        var to = manifest.WindowEndNs is { } e ? FromNanoseconds(e) : from;
        return new UploadManifest(from, to < from ? from : to, json);
    }

    /// <summary>
    /// A file's own manifest, built by reading it (<see cref="Spool.CaptureManifestBuilder"/>), for a capture that comes
    /// without one (<c>survey6 probe upload FILE</c>). A file without counters or timestamped frames gets its
    /// modification time for both ends of its window.
    /// </summary>
    public static UploadManifest FromCapture(string path)
    {
        var manifest = Spool.CaptureManifestBuilder.Build(path);
        return For(manifest, manifest.ToJson(), new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero));
    }

    /// <summary>
    /// A manifest given with the file (<c>survey6 probe upload FILE --manifest M</c>), sent as it is: its window when it
    /// is a valid manifest, else (the server will refuse it and say why) the file's first and last frame.
    /// </summary>
    public static UploadManifest Given(string path, string json)
    {
        try
        {
            return For(CaptureManifest.Parse(json), json, new DateTimeOffset(File.GetLastWriteTimeUtc(path), TimeSpan.Zero));
        }
        catch (ManifestException)
        {
            return FromFrames(path, json);
        }
    }

    /// <summary>The window from the first and last frame timestamps in the file; a file without any gets its modification time.</summary>
    private static UploadManifest FromFrames(string path, string json)
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

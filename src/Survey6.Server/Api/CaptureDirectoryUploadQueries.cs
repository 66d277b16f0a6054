using System.Globalization;
using Survey6.Contracts.Manifests;
using Survey6.Data;

namespace Survey6.Server.Api;

/// <summary>
/// <see cref="IUploadQueries"/> over the capture store's files,
/// <c>DATA/captures/PROBE/DATE/SHA.{pcapng,manifest.json,queued}</c> (docs/upload-store.md): every
/// stored capture has a manifest saying what the server vouches for. It reads every manifest per
/// call, which is fine for a stand-in; the upload service's table replaces it.
/// </summary>
public sealed class CaptureDirectoryUploadQueries(DataLayout layout) : IUploadQueries
{
    private const string ManifestSuffix = ".manifest.json";

    public ValueTask<Page<UploadDto>> ListAsync(string? probeId, PageRequest page, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(page);
        var after = PageCursor.Decode(page.Cursor, 2);
        DateTimeOffset? afterTime = null;
        if (after is not null)
        {
            afterTime = DateTimeOffset.TryParseExact(after[0], "o", CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var t)
                ? t : throw new InvalidCursorException();
        }

        var uploads = Scan(probeId, cancellationToken)
            .OrderByDescending(u => u.ReceivedAt)
            .ThenBy(u => u.Sha256, StringComparer.Ordinal)
            .Where(u => afterTime is null || u.ReceivedAt < afterTime
                || (u.ReceivedAt == afterTime && string.CompareOrdinal(u.Sha256, after![1]) > 0))
            .Take(page.Limit + 1)
            .ToList();
        return ValueTask.FromResult(PageCursor.Make(uploads, page.Limit, u => PageCursor.Encode(u.ReceivedAt.ToString("o", CultureInfo.InvariantCulture), u.Sha256)));
    }

    private IEnumerable<UploadDto> Scan(string? probeId, CancellationToken cancellationToken)
    {
        var captures = layout.Captures;
        if (!Directory.Exists(captures))
            yield break;
        // A probe id names a folder here: anything that could step outside captures/ matches nothing.
        IEnumerable<string> probeDirectories = probeId is null ? Directory.EnumerateDirectories(captures)
            : probeId.Length > 0 && probeId[0] != '.' && Path.GetFileName(probeId) == probeId && Directory.Exists(Path.Combine(captures, probeId))
                ? [Path.Combine(captures, probeId)]
            : [];
        foreach (var probeDirectory in probeDirectories)
        {
            foreach (var dateDirectory in Directory.EnumerateDirectories(probeDirectory))
            {
                cancellationToken.ThrowIfCancellationRequested();
                foreach (var manifest in Directory.EnumerateFiles(dateDirectory, "*" + ManifestSuffix))
                {
                    if (Read(manifest) is { } upload)
                        yield return upload;
                }
            }
        }
    }

    /// <summary>The upload a manifest describes; null for a manifest without its capture (a crash leftover) or one that cannot be read.</summary>
    private static UploadDto? Read(string manifestPath)
    {
        var directory = Path.GetDirectoryName(manifestPath)!;
        var sha = Path.GetFileName(manifestPath)[..^ManifestSuffix.Length];
        if (!File.Exists(Path.Combine(directory, sha + ".pcapng")))
            return null;
        try
        {
            var manifest = StoredCaptureManifest.Load(manifestPath);
            return new UploadDto(
                manifest.Sha256,
                manifest.ProbeId,
                manifest.Size,
                manifest.Format,
                manifest.WindowStart,
                manifest.WindowEnd,
                manifest.ReceivedAt ?? File.GetLastWriteTimeUtc(manifestPath),
                File.Exists(Path.Combine(directory, sha + ".queued")) ? "queued" : "stored");
        }
        catch (Exception e) when (e is IOException or ManifestException)
        {
            return null;
        }
    }
}

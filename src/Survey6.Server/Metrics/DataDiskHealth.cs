using Microsoft.Extensions.Options;
using Survey6.Data;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;

namespace Survey6.Server.Metrics;

/// <summary>
/// The data directory's free space against the floor below which the store refuses uploads
/// (<see cref="CaptureStoreOptions.MinFreeDiskBytes"/>: one setting, so health says degraded exactly when uploads are refused), read when asked.
/// </summary>
public sealed record DataDiskState(string Directory, long FreeBytes, long FloorBytes)
{
    public bool BelowFloor => FreeBytes < FloorBytes;

    /// <summary>The setting that holds the floor, as an operator writes it.</summary>
    public const string FloorSetting = UploadHostingExtensions.SectionName + ":" + nameof(CaptureStoreOptions.MinFreeDiskBytes);

    /// <summary>Why the server is degraded, or null: "the data directory DATA has 1.2 MiB free, below the floor of 1 GiB (Server:Uploads:MinFreeDiskBytes); …".</summary>
    public string? Reason => BelowFloor
        ? $"the data directory {Directory} has {Bytes(FreeBytes)} free, below the floor of {Bytes(FloorBytes)} ({FloorSetting}); new uploads are refused until there is room"
        : null;

    /// <summary>Reads the free bytes of the file system holding <paramref name="directory"/>.</summary>
    public static DataDiskState Read(string directory, long floorBytes) =>
        new(directory, new DriveInfo(directory).AvailableFreeSpace, floorBytes);

    private static string Bytes(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.#} GiB"
        : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.#} MiB"
        : bytes >= 1L << 10 ? $"{bytes / 1024.0:0.#} KiB"
        : $"{bytes} B";
}

/// <summary>The data directory's free space now; <see cref="ServerHealth"/> says what it means for the server.</summary>
public sealed class DataDiskHealth(DataLayout layout, IOptions<CaptureStoreOptions> options)
{
    public DataDiskState Read() => DataDiskState.Read(layout.Root, options.Value.MinFreeDiskBytes);
}

using System.Globalization;
using Microsoft.Extensions.Logging;
using Survey6.Packets.Files;

namespace Survey6.Data;

/// <summary>
/// The C&amp;C's data directory (<c>DATA</c>, <c>Server:DataDirectory</c>): every name in it, and who may read it.
/// The server, its upload store, the ingest queue, the aggregator and the web pages all ask here; no other code
/// spells these names.
/// <code>
/// DATA/                    0700, created or tightened by <see cref="EnsureOwnerOnly"/>
///   pki/                   CA and TLS keys (0600) and certificates
///   state.db               probes, certificates, tokens, health, commands (SQLite, 0600)
///   web-admin-password     the web UI's first admin password (0600), until one is set
///   incoming/PROBE/        uploads in progress (SHA.part, SHA.meta)
///   captures/PROBE/DATE/   stored captures (SHA.pcapng, SHA.manifest.json, SHA.queued), 0750/0640
///   ingest.db              the embedded ingest queue (SQLite, 0600)
///   lake/                  the Parquet datasets (Aggregator:LakeDirectory moves it)
///   aggregator.db          the aggregator's run ledger (SQLite, 0600; Aggregator:LedgerPath moves it)
///   aggregator.lock        the stage lock (and aggregator.lock.gate)
///   server.lock            held by the one `server run` that owns the directory (flock; holds its PID)
///   aggregator-scheduler[-WORKER].db   a worker's Quartz job store
///   anonymisation.key      the Crypto-PAn key, when anonymisation is on
///   apt/, apt-signing/     the probe package repository and its signing key
///   data-protection/       the web UI's Data Protection key ring
/// </code>
/// </summary>
public sealed partial class DataLayout
{
    /// <summary>
    /// Settings (section <c>Aggregator</c>) that put the aggregator's part elsewhere. The server's pages read them
    /// too, so that they look where the aggregator writes, even when the aggregator runs in another process.
    /// </summary>
    public const string AggregatorDataDirectorySetting = "Aggregator:DataDirectory";

    /// <inheritdoc cref="AggregatorDataDirectorySetting"/>
    public const string LakeDirectorySetting = "Aggregator:LakeDirectory";

    /// <inheritdoc cref="AggregatorDataDirectorySetting"/>
    public const string LedgerPathSetting = "Aggregator:LedgerPath";

    /// <summary>A stored capture's file: <c>captures/PROBE/DATE/SHA.pcapng</c>.</summary>
    public const string CaptureSuffix = ".pcapng";

    /// <summary>The server's manifest beside a stored capture: <c>SHA.manifest.json</c>.</summary>
    public const string CaptureManifestSuffix = ".manifest.json";

    /// <summary>Longest probe id, which names folders.</summary>
    public const int MaxProbeIdLength = 128;

    private const string DateFolderFormat = "yyyy-MM-dd";
    private const string PkiName = "pki";
    private const string StateDatabaseName = "state.db";
    private const string AdminPasswordName = "web-admin-password";
    private const string CapturesName = "captures";
    private const string IncomingName = "incoming";
    private const string IngestDatabaseName = "ingest.db";
    private const string LakeName = "lake";
    private const string LedgerName = "aggregator.db";
    private const string StageLockName = "aggregator.lock";
    private const string ServerLockName = "server.lock";
    private const string SchedulerStoreName = "aggregator-scheduler";
    private const string AnonymisationKeyName = "anonymisation.key";
    private const string AptName = "apt";
    private const string AptSigningName = "apt-signing";
    private const string DataProtectionName = "data-protection";

    /// <param name="root">The data directory.</param>
    /// <param name="lakeDirectory">Where the lake is when not <c>DATA/lake</c> (<see cref="LakeDirectorySetting"/>).</param>
    /// <param name="ledgerPath">Where the run ledger is when not <c>DATA/aggregator.db</c> (<see cref="LedgerPathSetting"/>).</param>
    public DataLayout(string root, string? lakeDirectory = null, string? ledgerPath = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
        Lake = string.IsNullOrWhiteSpace(lakeDirectory) ? Path.Combine(Root, LakeName) : Path.GetFullPath(lakeDirectory);
        Ledger = string.IsNullOrWhiteSpace(ledgerPath) ? Path.Combine(Root, LedgerName) : Path.GetFullPath(ledgerPath);
    }

    /// <summary>
    /// The C&amp;C's layout, with the lake and the ledger where the aggregator puts them, whether it runs in the
    /// server or in other processes: <paramref name="setting"/> looks up configuration keys (the <c>Aggregator</c>
    /// settings above); the aggregator uses <paramref name="dataDirectory"/> unless told otherwise.
    /// </summary>
    public static DataLayout ForServer(string dataDirectory, Func<string, string?> setting)
    {
        ArgumentNullException.ThrowIfNull(setting);
        var aggregatorRoot = setting(AggregatorDataDirectorySetting);
        var aggregator = new DataLayout(string.IsNullOrWhiteSpace(aggregatorRoot) ? dataDirectory : aggregatorRoot,
            setting(LakeDirectorySetting), setting(LedgerPathSetting));
        return new DataLayout(dataDirectory, aggregator.Lake, aggregator.Ledger);
    }

    public string Root { get; }

    /// <summary>The CA and the server's TLS certificate and keys.</summary>
    public string Pki => Path.Combine(Root, PkiName);

    public string StateDatabase => Path.Combine(Root, StateDatabaseName);

    /// <summary>The web UI's first admin password, written owner-only by the first start; removed when one is set.</summary>
    public string AdminPasswordFile => Path.Combine(Root, AdminPasswordName);

    /// <summary>Stored captures: <c>captures/PROBE/YYYY-MM-DD/SHA.*</c>.</summary>
    public string Captures => Path.Combine(Root, CapturesName);

    /// <summary>
    /// The folder of a probe's captures whose window starts on <paramref name="date"/> (UTC):
    /// <c>captures/PROBE/YYYY-MM-DD</c>. The only way from a probe id and a date to a path: every reader derives it here.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="probeId"/> is not a valid probe id (<see cref="IsValidProbeId"/>).</exception>
    public string CaptureDirectory(string probeId, DateOnly date)
    {
        if (!IsValidProbeId(probeId))
            throw new ArgumentException($"'{probeId}' is not a valid probe id (1-{MaxProbeIdLength} of A-Z a-z 0-9 . _ -, not starting with a dot).", nameof(probeId));
        return Path.Combine(Captures, probeId, date.ToString(DateFolderFormat, CultureInfo.InvariantCulture));
    }

    /// <summary>A stored capture: <c>captures/PROBE/YYYY-MM-DD/SHA.pcapng</c>.</summary>
    /// <exception cref="ArgumentException">The probe id or the SHA-256 (<see cref="IsSha256"/>) is not valid.</exception>
    public string CapturePath(string probeId, DateOnly date, string sha256) => Path.Combine(CaptureDirectory(probeId, date), RequireSha256(sha256) + CaptureSuffix);

    /// <summary>
    /// A stored capture's name relative to the data directory, <c>captures/PROBE/YYYY-MM-DD/SHA.pcapng</c> with
    /// <c>/</c> separators: what the lake records (<c>captures.capture_path</c>), so that it holds wherever the
    /// directory is mounted. <c>Path.Combine(Root, name)</c> is <see cref="CapturePath"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The probe id or the SHA-256 (<see cref="IsSha256"/>) is not valid.</exception>
    public static string StoredCaptureName(string probeId, DateOnly date, string sha256)
    {
        if (!IsValidProbeId(probeId))
            throw new ArgumentException($"'{probeId}' is not a valid probe id (1-{MaxProbeIdLength} of A-Z a-z 0-9 . _ -, not starting with a dot).", nameof(probeId));
        return string.Join('/', CapturesName, probeId, date.ToString(DateFolderFormat, CultureInfo.InvariantCulture), RequireSha256(sha256) + CaptureSuffix);
    }

    /// <summary>The server's manifest beside a stored capture: <c>captures/PROBE/YYYY-MM-DD/SHA.manifest.json</c>.</summary>
    /// <exception cref="ArgumentException">The probe id or the SHA-256 (<see cref="IsSha256"/>) is not valid.</exception>
    public string CaptureManifestPath(string probeId, DateOnly date, string sha256) =>
        Path.Combine(CaptureDirectory(probeId, date), RequireSha256(sha256) + CaptureManifestSuffix);

    /// <summary>The date a folder under <c>captures/PROBE/</c> stands for; false for foreign names.</summary>
    public static bool TryParseDateFolder(string? name, out DateOnly date) =>
        DateOnly.TryParseExact(name, DateFolderFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out date);

    /// <summary>
    /// Probe ids become folder names, so only a conservative set is allowed: 1-128 of <c>[A-Za-z0-9._-]</c>, not
    /// starting with a dot (rules out <c>.</c>, <c>..</c> and hidden names).
    /// </summary>
    public static bool IsValidProbeId(string? probeId)
    {
        if (string.IsNullOrEmpty(probeId) || probeId.Length > MaxProbeIdLength || probeId[0] == '.')
            return false;
        foreach (var c in probeId)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                return false;
        }
        return true;
    }

    /// <summary>64 lower-case hex digits, as stored files are named.</summary>
    public static bool IsSha256(string? sha256) => sha256 is { Length: 64 } && sha256.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');

    private static string RequireSha256(string sha256) =>
        IsSha256(sha256) ? sha256 : throw new ArgumentException($"'{sha256}' is not a SHA-256 of 64 lower-case hex digits.", nameof(sha256));

    /// <summary>Uploads in progress: <c>incoming/PROBE/SHA.{part,meta}</c>.</summary>
    public string Incoming => Path.Combine(Root, IncomingName);

    /// <summary>The embedded ingest queue, unless <c>Ingest:Sqlite:Path</c> puts it elsewhere.</summary>
    public string IngestDatabase => Path.Combine(Root, IngestDatabaseName);

    /// <summary>Root of the Parquet datasets.</summary>
    public string Lake { get; }

    /// <summary>The aggregator's SQLite run ledger.</summary>
    public string Ledger { get; }

    /// <summary>The lock the aggregator's stages take, across processes.</summary>
    public string StageLock => Path.Combine(Root, StageLockName);

    /// <summary>
    /// The lock the one server running on this directory holds (<see cref="OwnerLock"/>): a second one, with or without
    /// its aggregator, would recover uploads the first is receiving.
    /// </summary>
    public string ServerLock => Path.Combine(Root, ServerLockName);

    /// <summary>
    /// Takes <see cref="ServerLock"/> (creating the directory owner-only when missing) before anything else is
    /// touched; refused with the owner's PID when another server runs here.
    /// </summary>
    public OwnerLock AcquireServerLock()
    {
        if (!Directory.Exists(Root))
            SecureFiles.CreateOwnerOnlyDirectory(Root);
        try
        {
            return OwnerLock.Acquire(ServerLock);
        }
        catch (OwnerLockException e)
        {
            var pid = e.OwnerPid is { } owner ? $" (PID {owner})" : "";
            throw new OwnerLockException($"another survey6 server{pid} runs on the data directory {Root}; stop it first (systemctl stop survey6-server)", e);
        }
    }

    /// <summary>The Crypto-PAn key created on first use when <c>Aggregator:Anonymisation:KeyPath</c> is not set.</summary>
    public string AnonymisationKey => Path.Combine(Root, AnonymisationKeyName);

    /// <summary>The signed apt repository the C&amp;C serves to probe hosts.</summary>
    public string Apt => Path.Combine(Root, AptName);

    /// <summary>The GnuPG home holding the repository's signing key.</summary>
    public string AptSigning => Path.Combine(Root, AptSigningName);

    /// <summary>The web UI's Data Protection key ring (session cookies, antiforgery tokens), owner-only.</summary>
    public string DataProtectionKeys => Path.Combine(Root, DataProtectionName);

    /// <summary>A worker's Quartz job store: <c>aggregator-scheduler.db</c>, or <c>aggregator-scheduler-NAME.db</c> for a named worker.</summary>
    public string SchedulerStore(string? workerName) =>
        Path.Combine(Root, (string.IsNullOrWhiteSpace(workerName) ? SchedulerStoreName : SchedulerStoreName + "-" + workerName) + ".db");

    /// <summary>
    /// Makes the data directory owner-only (0700) before anything is put in it: creates it so when it is missing
    /// (whatever the umask), tightens an existing one that its group or others may enter (logged), and refuses with
    /// a message saying what to run when that is not allowed. It holds captured packets, keys and the databases.
    /// The C&amp;C, which owns the directory, calls this first; the other parts only create what is missing
    /// owner-only (<see cref="SecureFiles.CreateOwnerOnlyDirectory"/>, <see cref="SecureFiles.CreateOwnerOnlyFile"/>).
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">The directory is group- or world-accessible and this process cannot change that.</exception>
    public void EnsureOwnerOnly(ILogger? logger = null)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Root);
            return;
        }
        // Missing parents too are created owner-only; an existing parent keeps its mode.
        SecureFiles.CreateOwnerOnlyDirectory(Root);
        var mode = File.GetUnixFileMode(Root);
        if ((mode & SecureFiles.GroupOrOther) == 0)
            return;
        try
        {
            File.SetUnixFileMode(Root, mode & ~SecureFiles.GroupOrOther);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            // Not its owner, or a read-only file system: a data directory others can read is not used.
            throw new UnauthorizedAccessException(
                $"The data directory {Root} is mode {Octal(mode)}: its group or others may read the captures, keys and databases in it, " +
                $"and this user may not change that. Run `chmod 700 {Root}` as its owner (or as root), then start again.", e);
        }
        if (logger is not null)
            LogTightened(logger, Root, Octal(mode));
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8).PadLeft(3, '0');

    [LoggerMessage(EventId = 900, Level = LogLevel.Warning,
        Message = "The data directory {DataDirectory} was mode {Mode}, open to its group or others; it is now 0700 (owner only)")]
    private static partial void LogTightened(ILogger logger, string dataDirectory, string mode);
}

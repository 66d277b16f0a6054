using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Survey6.Data;
using Survey6.Packets.Files;

namespace Survey6.Server.Repository;

/// <summary>A package the repository serves, as its Packages index lists it.</summary>
public sealed record AptPackage(string Name, string Version, string Architecture, string Filename, long Size, string Sha256);

/// <summary>Refused input or a failed index build; the message says what to do.</summary>
public sealed class AptRepositoryException(string message) : Exception(message);

/// <summary>
/// The signed apt repository the C&amp;C serves at <c>/apt/</c> for probe hosts. Under the data
/// directory: <c>apt/</c> is what is served (pool, dists, the public key), <c>apt-signing/</c> the
/// private GnuPG home with the signing key (never served). The index is built with Debian's own
/// <c>apt-ftparchive</c> and signed with <c>gpg</c> (InRelease and Release.gpg); the key is
/// generated on first use. Adding packages is a command-line operation; the server only reads.
/// </summary>
public sealed partial class AptRepository(string dataDirectory)
{
    public const string UrlPrefix = "/apt";
    public const string Distribution = "survey6";
    public const string Component = "main";
    public const string Architecture = "amd64";
    public const string KeyFileName = "survey6-archive-keyring.asc";
    public const string BinaryKeyFileName = "survey6-archive-keyring.gpg";

    private static readonly TimeSpan ToolTimeout = TimeSpan.FromMinutes(2);

    public string Root { get; } = new DataLayout(dataDirectory).Apt;

    public string SigningHome { get; } = new DataLayout(dataDirectory).AptSigning;

    public string PoolDirectory => Path.Combine(Root, "pool", Component);

    public string SuiteDirectory => Path.Combine(Root, "dists", Distribution);

    public string PackagesFile => Path.Combine(SuiteDirectory, Component, "binary-" + Architecture, "Packages");

    public string PublicKeyFile => Path.Combine(Root, KeyFileName);

    private string FingerprintFile => Path.Combine(SigningHome, "fingerprint");

    /// <summary>The signing key's fingerprint, or null before the first package was added or the key asked for.</summary>
    public string? Fingerprint => File.Exists(FingerprintFile) ? File.ReadAllText(FingerprintFile).Trim() : null;

    /// <summary>The one line a probe host puts in /etc/apt/sources.list.d/survey6.list.</summary>
    public static string SourceLine(Uri httpBase, string keyPath = "/etc/apt/keyrings/survey6.asc")
    {
        ArgumentNullException.ThrowIfNull(httpBase);
        return $"deb [signed-by={keyPath}] {httpBase.ToString().TrimEnd('/')}{UrlPrefix} {Distribution} {Component}";
    }

    /// <summary>Every package in the published index; empty before the first add.</summary>
    public IReadOnlyList<AptPackage> List()
    {
        if (!File.Exists(PackagesFile))
            return [];
        var packages = new List<AptPackage>();
        foreach (var stanza in File.ReadAllText(PackagesFile).Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = ParseStanza(stanza);
            if (fields.TryGetValue("Package", out var name) && fields.TryGetValue("Version", out var version))
            {
                packages.Add(new AptPackage(
                    name,
                    version,
                    fields.GetValueOrDefault("Architecture", ""),
                    fields.GetValueOrDefault("Filename", ""),
                    long.TryParse(fields.GetValueOrDefault("Size"), out var size) ? size : 0,
                    fields.GetValueOrDefault("SHA256", "")));
            }
        }

        return packages;
    }

    /// <summary>The newest version of each package the index lists, in dpkg's order.</summary>
    public static IReadOnlyDictionary<string, string> Newest(IEnumerable<AptPackage> packages) =>
        packages.GroupBy(p => p.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(p => p.Version).Max(DebianVersion.Comparer)!, StringComparer.Ordinal);

    /// <summary>
    /// Copies <paramref name="debFile"/> into the pool under its canonical name and rebuilds the signed
    /// index. The same file twice is harmless; a different file under a name already served is refused,
    /// because apt clients that saw the first would reject the second.
    /// </summary>
    public AptPackage Add(string debFile)
    {
        var path = Path.GetFullPath(debFile);
        if (!File.Exists(path))
            throw new AptRepositoryException($"{debFile}: no such file");
        var fields = ReadControl(path);
        var name = fields.GetValueOrDefault("Package", "");
        var version = fields.GetValueOrDefault("Version", "");
        var architecture = fields.GetValueOrDefault("Architecture", "");
        if (!PackageName().IsMatch(name) || !VersionText().IsMatch(version))
            throw new AptRepositoryException($"{debFile}: package name '{name}' or version '{version}' is not valid");
        if (architecture != Architecture && architecture != "all")
            throw new AptRepositoryException($"{debFile}: architecture '{architecture}' is not served (only {Architecture} and all)");

        using var exclusive = Lock();
        Directory.CreateDirectory(PoolDirectory);
        // The file name carries no epoch (':' is awkward in URLs); dpkg-name does the same.
        var fileName = $"{name}_{StripEpoch(version)}_{architecture}.deb";
        var target = Path.Combine(PoolDirectory, fileName);
        var hash = Sha256(path);
        if (File.Exists(target))
        {
            if (!string.Equals(Sha256(target), hash, StringComparison.Ordinal))
                throw new AptRepositoryException($"{fileName} is already served with different content; build it with a new version");
        }
        else
        {
            var temporary = Path.Combine(PoolDirectory, "." + fileName + ".tmp");
            File.Copy(path, temporary, overwrite: true);
            File.SetUnixFileMode(temporary, SecureFiles.PublicFile);
            using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite))
                stream.Flush(flushToDisk: true);
            File.Move(temporary, target);
        }

        RebuildLocked();
        return new AptPackage(name, version, architecture, $"pool/{Component}/{fileName}", new FileInfo(target).Length, hash);
    }

    /// <summary>Rebuilds and signs the index from the pool (creating the key if needed).</summary>
    public void Rebuild()
    {
        using var exclusive = Lock();
        RebuildLocked();
    }

    /// <summary>The ASCII-armoured public key, generating the key pair first if there is none.</summary>
    public string PublicKey()
    {
        using var exclusive = Lock();
        EnsureKey();
        return File.ReadAllText(PublicKeyFile);
    }

    private void RebuildLocked()
    {
        var fingerprint = EnsureKey();
        Directory.CreateDirectory(PoolDirectory);
        var staging = Path.Combine(Root, "dists", "." + Distribution + ".new");
        if (Directory.Exists(staging))
            Directory.Delete(staging, recursive: true);
        var binary = Path.Combine(staging, Component, "binary-" + Architecture);
        Directory.CreateDirectory(binary);

        // Run from the repository root so that Filename: fields are pool/main/NAME.deb.
        var packages = Run("apt-ftparchive", Root, "packages", Path.Combine("pool", Component)).Stdout;
        File.WriteAllText(Path.Combine(binary, "Packages"), packages);
        using (var gz = new GZipStream(File.Create(Path.Combine(binary, "Packages.gz")), CompressionLevel.SmallestSize))
            gz.Write(Encoding.UTF8.GetBytes(packages));

        string[] release =
        [
            "-o", "APT::FTPArchive::Release::Origin=survey6",
            "-o", "APT::FTPArchive::Release::Label=survey6",
            "-o", $"APT::FTPArchive::Release::Suite={Distribution}",
            "-o", $"APT::FTPArchive::Release::Codename={Distribution}",
            "-o", $"APT::FTPArchive::Release::Architectures={Architecture}",
            "-o", $"APT::FTPArchive::Release::Components={Component}",
            "-o", "APT::FTPArchive::Release::Description=survey6 packages served by the C&C server",
            "release", ".",
        ];
        var releaseFile = Path.Combine(staging, "Release");
        File.WriteAllText(releaseFile, Run("apt-ftparchive", staging, release).Stdout);
        try
        {
            Gpg(staging, "--local-user", fingerprint, "--digest-algo", "SHA512", "--clearsign", "--output", "InRelease", "Release");
            Gpg(staging, "--local-user", fingerprint, "--digest-algo", "SHA512", "--armor", "--detach-sign", "--output", "Release.gpg", "Release");
        }
        finally
        {
            StopAgent();
        }

        // Swap the whole suite at once: a client sees the old index or the new one, never half of each.
        var old = Path.Combine(Root, "dists", "." + Distribution + ".old");
        if (Directory.Exists(old))
            Directory.Delete(old, recursive: true);
        if (Directory.Exists(SuiteDirectory))
            Directory.Move(SuiteDirectory, old);
        Directory.Move(staging, SuiteDirectory);
        if (Directory.Exists(old))
            Directory.Delete(old, recursive: true);
    }

    /// <summary>The signing key's fingerprint; generates the key and exports its public half on first use.</summary>
    private string EnsureKey()
    {
        Directory.CreateDirectory(Root);
        if (Fingerprint is { Length: > 0 } known && File.Exists(PublicKeyFile))
            return known;
        SecureFiles.CreateOwnerOnlyDirectory(SigningHome);
        try
        {
            var fingerprint = SecretKeyFingerprint();
            if (fingerprint is null)
            {
                // No passphrase: the key guards the index, and the data directory (0700) guards the key.
                Gpg(SigningHome, "--passphrase", "", "--quick-gen-key", $"survey6 apt repository <apt@{Environment.MachineName}.survey6.invalid>", "ed25519", "sign", "never");
                fingerprint = SecretKeyFingerprint() ?? throw new AptRepositoryException("gpg did not create a signing key");
            }

            File.WriteAllText(PublicKeyFile, Gpg(SigningHome, "--armor", "--export", fingerprint));
            // The binary form too, for signed-by on apt versions that do not read armoured keys.
            Gpg(SigningHome, "--output", Path.Combine(Root, BinaryKeyFileName), "--export", fingerprint);
            SecureFiles.WriteAtomically(FingerprintFile, fingerprint + "\n", SecureFiles.OwnerOnlyFile);
            return fingerprint;
        }
        finally
        {
            StopAgent();
        }
    }

    private string? SecretKeyFingerprint()
    {
        var listing = Gpg(SigningHome, "--with-colons", "--list-secret-keys");
        var lines = listing.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("sec:", StringComparison.Ordinal))
                continue;
            for (var k = i + 1; k < lines.Length && !lines[k].StartsWith("sec:", StringComparison.Ordinal); k++)
            {
                if (lines[k].StartsWith("fpr:", StringComparison.Ordinal))
                    return lines[k].Split(':')[9];
            }
        }

        return null;
    }

    private string Gpg(string workingDirectory, params string[] arguments) =>
        Run("gpg", workingDirectory, ["--homedir", SigningHome, "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", .. arguments]).Stdout;

    // gpg starts an agent that would outlive the command; stop it so nothing keeps running.
    private void StopAgent()
    {
        try
        {
            Run("gpgconf", SigningHome, "--homedir", SigningHome, "--kill", "gpg-agent");
        }
        catch (AptRepositoryException)
        {
            // Nothing to stop.
        }
    }

    private static Dictionary<string, string> ReadControl(string debFile)
    {
        try
        {
            return ParseStanza(Run("dpkg-deb", Path.GetDirectoryName(debFile)!, "--field", debFile, "Package", "Version", "Architecture").Stdout);
        }
        catch (AptRepositoryException e)
        {
            throw new AptRepositoryException($"{debFile} is not a Debian package: {e.Message}");
        }
    }

    private static Dictionary<string, string> ParseStanza(string stanza)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in stanza.Split('\n'))
        {
            if (line.Length == 0 || char.IsWhiteSpace(line[0]))
                continue; // continuation lines (descriptions) are not needed here
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
                fields[line[..colon]] = line[(colon + 1)..].Trim();
        }

        return fields;
    }

    private static string StripEpoch(string version)
    {
        var colon = version.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? version : version[(colon + 1)..];
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    // One writer at a time (two `repo add` at once would interleave their index builds).
    private FileStream Lock()
    {
        SecureFiles.CreateOwnerOnlyDirectory(SigningHome);
        var path = Path.Combine(SigningHome, "lock");
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (deadline.Elapsed < ToolTimeout)
            {
                Thread.Sleep(200);
            }
        }
    }

    private static (string Stdout, string Stderr) Run(string program, string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new AptRepositoryException($"{program} did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new AptRepositoryException($"{program} is not installed ({e.Message}); install the package that provides it (apt-utils, gpg, dpkg)");
        }

        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(ToolTimeout))
            {
                process.Kill(entireProcessTree: true);
                throw new AptRepositoryException($"{program} did not finish within {ToolTimeout.TotalSeconds:0} s");
            }

            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new AptRepositoryException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {stderr.Result.Trim()}");
            return (stdout.Result, stderr.Result);
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9+.-]+$")]
    private static partial Regex PackageName();

    [GeneratedRegex("^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")]
    private static partial Regex VersionText();
}

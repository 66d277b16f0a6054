using Survey6.Packets.Files;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Survey6.Server.Diagnostics;
using Survey6.Server.Options;

namespace Survey6.Server.Pki;

/// <summary>
/// The CA and TLS certificate under the data directory. The first start creates both; later
/// starts load them and re-issue the TLS certificate when its names no longer match the
/// configuration or a third of its lifetime is left.
/// </summary>
public sealed class ServerPki : IDisposable
{
    public ServerPki(IOptions<ServerOptions> options, TimeProvider time, ILogger<ServerPki>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = options.Value;
        var log = (ILogger?)logger ?? NullLogger.Instance;
        Directory = new ServerDataDirectory(settings.DataDirectory);
        // First, before anything else puts a file in it: the data directory is owner-only.
        Directory.EnsureCreated(log);
        var now = time.GetUtcNow();
        Authority = LoadOrCreateAuthority(settings, now, log);
        ServerCertificate = LoadOrIssueServerCertificate(settings, now, log);
    }

    public ServerDataDirectory Directory { get; }

    public CertificateAuthority Authority { get; }

    /// <summary>The TLS certificate, with its private key.</summary>
    public X509Certificate2 ServerCertificate { get; }

    /// <summary>The names the TLS certificate should carry: the configured ones, or localhost, the loopback addresses and the host name.</summary>
    public static IReadOnlyList<string> TlsNames(ServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.TlsNames.Count > 0)
            return options.TlsNames.Select(n => n.Trim()).Where(n => n.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var names = new List<string> { "localhost", "127.0.0.1", "::1" };
        var host = Dns.GetHostName();
        if (!string.IsNullOrEmpty(host) && !names.Contains(host, StringComparer.OrdinalIgnoreCase))
            names.Add(host);
        return names;
    }

    public void Dispose()
    {
        ServerCertificate.Dispose();
        Authority.Dispose();
    }

    private CertificateAuthority LoadOrCreateAuthority(ServerOptions options, DateTimeOffset now, ILogger log)
    {
        if (File.Exists(Directory.CaCertificate) && File.Exists(Directory.CaKey))
        {
            EnsureOwnerOnly(Directory.CaKey, log);
            return CertificateAuthority.Load(Directory.CaCertificate, Directory.CaKey);
        }

        var authority = CertificateAuthority.Create(
            "survey6 CA " + Dns.GetHostName(), now - options.ClockSkewAllowance, now + options.CaLifetime, out var keyPem);
        // Key first: a certificate without its key would make the next start fail rather than re-create.
        SecureFiles.WriteAtomically(Directory.CaKey, keyPem, SecureFiles.OwnerOnlyFile);
        SecureFiles.WriteAtomically(Directory.CaCertificate, authority.CertificatePem, SecureFiles.PublicFile);
        ServerLog.CaCreated(log, Directory.CaCertificate, authority.Pin);
        return authority;
    }

    private X509Certificate2 LoadOrIssueServerCertificate(ServerOptions options, DateTimeOffset now, ILogger log)
    {
        var names = TlsNames(options);
        if (File.Exists(Directory.ServerCertificate) && File.Exists(Directory.ServerKey))
        {
            EnsureOwnerOnly(Directory.ServerKey, log);
            var existing = X509Certificate2.CreateFromPemFile(Directory.ServerCertificate, Directory.ServerKey);
            if (IsCurrent(existing, names, now, options.ServerCertificateLifetime))
                return existing;
            existing.Dispose();
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var issued = Authority.IssueServerCertificate(key, names, now - options.ClockSkewAllowance, now + options.ServerCertificateLifetime);
        SecureFiles.WriteAtomically(Directory.ServerKey, key.ExportPkcs8PrivateKeyPem(), SecureFiles.OwnerOnlyFile);
        SecureFiles.WriteAtomically(Directory.ServerCertificate, issued.ExportCertificatePem(), SecureFiles.PublicFile);
        ServerLog.ServerCertificateIssued(log, string.Join(", ", names), issued.NotAfter.ToUniversalTime());
        // Reload from the files so the key is the one on disk, not the disposed in-memory object.
        issued.Dispose();
        return X509Certificate2.CreateFromPemFile(Directory.ServerCertificate, Directory.ServerKey);
    }

    private bool IsCurrent(X509Certificate2 certificate, IReadOnlyList<string> names, DateTimeOffset now, TimeSpan lifetime)
    {
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notAfter - now < lifetime / 3 || certificate.NotBefore.ToUniversalTime() > now.UtcDateTime)
            return false;
        if (!string.Equals(certificate.Issuer, Authority.Certificate.Subject, StringComparison.Ordinal))
            return false;
        // Issued by another CA with the same name (the CA files were replaced): re-issue.
        using (var ca = Authority.PublicCertificate)
        {
            if (!VerifiesUnder(certificate, ca))
                return false;
        }

        var san = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        if (san is null)
            return false;
        var present = san.EnumerateDnsNames().Concat(san.EnumerateIPAddresses().Select(a => a.ToString()))
            .Select(Normalise).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var wanted = names.Select(Normalise).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return present.SetEquals(wanted);
    }

    private static string Normalise(string name) => IPAddress.TryParse(name, out var address) ? address.ToString() : name;

    private static bool VerifiesUnder(X509Certificate2 certificate, X509Certificate2 issuer)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(issuer);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        return chain.Build(certificate);
    }

    private static void EnsureOwnerOnly(string path, ILogger log)
    {
        var mode = File.GetUnixFileMode(path);
        if ((mode & ~SecureFiles.OwnerOnlyFile) != 0)
        {
            ServerLog.KeyModeTightened(log, path, Convert.ToString((int)mode, 8));
            File.SetUnixFileMode(path, SecureFiles.OwnerOnlyFile);
        }
    }
}

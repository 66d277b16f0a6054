using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Survey6.Contracts;

namespace Survey6.Server.Pki;

/// <summary>
/// The server's own CA: self-signed ECDSA P-256. It issues the server's TLS certificate and every
/// probe certificate, so one pin (<see cref="Pin"/>) lets a probe trust the server and one trust
/// anchor lets the server authenticate probes.
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");
    private static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");

    private CertificateAuthority(X509Certificate2 certificate)
    {
        Certificate = certificate;
        Pin = CaPin.Compute(certificate);
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary><c>sha256:HEX</c> of the CA's SubjectPublicKeyInfo, as probes pin it.</summary>
    public string Pin { get; }

    /// <summary>The CA certificate alone (no key), for trust stores.</summary>
    public X509Certificate2 PublicCertificate => X509CertificateLoader.LoadCertificate(Certificate.RawData);

    public string CertificatePem => Certificate.ExportCertificatePem();

    public static CertificateAuthority Load(string certificatePath, string keyPath) =>
        new(X509Certificate2.CreateFromPemFile(certificatePath, keyPath));

    public static CertificateAuthority Create(string commonName, DateTimeOffset notBefore, DateTimeOffset notAfter, out string keyPem)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(CommonName(commonName), key, HashAlgorithmName.SHA256);
        // pathLength 0: this CA signs end-entity certificates only.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        keyPem = key.ExportPkcs8PrivateKeyPem();
        return new CertificateAuthority(request.CreateSelfSigned(notBefore, notAfter));
    }

    /// <summary>Issues the TLS server certificate for <paramref name="key"/>; <paramref name="names"/> become DNS or IP SANs.</summary>
    public X509Certificate2 IssueServerCertificate(ECDsa key, IReadOnlyList<string> names, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var request = new CertificateRequest(CommonName(names.Count > 0 ? names[0] : "survey6 server"), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var address))
                san.AddIpAddress(address);
            else
                san.AddDnsName(name);
        }

        request.CertificateExtensions.Add(san.Build());
        AddEndEntityExtensions(request, ServerAuthentication);
        return Sign(request, notBefore, notAfter).CopyWithPrivateKey(key);
    }

    /// <summary>Issues a probe's client certificate: subject CN is the probe id, whatever the request asked for.</summary>
    public X509Certificate2 IssueProbeCertificate(string probeId, PublicKey publicKey, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var request = new CertificateRequest(CommonName(probeId), publicKey, HashAlgorithmName.SHA256);
        AddEndEntityExtensions(request, ClientAuthentication);
        return Sign(request, notBefore, notAfter);
    }

    public void Dispose() => Certificate.Dispose();

    private void AddEndEntityExtensions(CertificateRequest request, Oid usage)
    {
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([usage], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
    }

    private X509Certificate2 Sign(CertificateRequest request, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        // An issued certificate must not outlive its issuer.
        var caNotAfter = new DateTimeOffset(Certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (notAfter > caNotAfter)
            notAfter = caNotAfter;
        return request.Create(Certificate, notBefore, notAfter, NewSerialNumber());
    }

    /// <summary>128 random bits, positive and without a leading zero byte (RFC 5280 asks for at most 20 octets, unpredictable).</summary>
    private static byte[] NewSerialNumber()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x40);
        return serial;
    }

    private static X500DistinguishedName CommonName(string commonName)
    {
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName(commonName);
        return builder.Build();
    }
}

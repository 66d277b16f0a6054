using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Survey6.Contracts;

namespace Survey6.Probe.Join;

/// <summary>
/// Trust in the server from one pin: a certificate is the server's CA only if its key hashes to
/// the pin, it is a CA, and it signed the server's TLS certificate. Nothing in the system trust
/// store counts.
/// </summary>
public static class PinnedCa
{
    /// <summary>
    /// Finds, among the certificates the server presented (<paramref name="candidates"/>), the CA that
    /// matches <paramref name="pin"/> and signed <paramref name="serverCertificate"/>; throws
    /// <see cref="ProbeJoinException"/> saying which condition failed.
    /// </summary>
    public static X509Certificate2 Find(X509Certificate2 serverCertificate, IEnumerable<X509Certificate2> candidates, string pin)
    {
        ArgumentNullException.ThrowIfNull(serverCertificate);
        ArgumentNullException.ThrowIfNull(candidates);
        var presented = candidates.ToList();
        var pinned = presented.Where(c => CaPin.Matches(c, pin)).ToList();
        if (pinned.Count == 0)
        {
            var seen = string.Join(", ", presented.Where(IsCa).Select(CaPin.Compute).Distinct());
            throw new ProbeJoinException(
                $"the server's CA does not match --ca-hash {pin} (the server presents {(seen.Length > 0 ? seen : "no CA certificate")}); refusing to send the token");
        }

        foreach (var candidate in pinned.Where(IsCa))
        {
            if (Chains(serverCertificate, candidate, out _))
                return candidate;
        }

        throw new ProbeJoinException(
            pinned.Any(IsCa)
                ? "the CA matching --ca-hash did not sign the server's TLS certificate (or it is outside its validity); refusing to send the token"
                : "the certificate matching --ca-hash is not a CA certificate; refusing to send the token");
    }

    /// <summary>True if <paramref name="certificate"/> chains to <paramref name="ca"/> alone and is valid now.</summary>
    public static bool Chains(X509Certificate2 certificate, X509Certificate2 ca, out string problem)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // a private CA with no CRL: the pin is the trust
        if (chain.Build(certificate))
        {
            problem = "";
            return true;
        }

        problem = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
        return false;
    }

    /// <summary>
    /// A TLS validation callback that accepts only servers whose certificate chains to
    /// <paramref name="ca"/> and names the host connected to. <paramref name="refusal"/> receives
    /// the reason of the last refusal, for the error message.
    /// </summary>
    public static RemoteCertificateValidationCallback Callback(X509Certificate2 ca, Action<string> refusal)
    {
        ArgumentNullException.ThrowIfNull(refusal);
        return (_, certificate, _, errors) =>
        {
            if (certificate is null)
            {
                refusal("the server presented no certificate");
                return false;
            }

            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                refusal("the server's certificate does not name the host in --server (add it to the server's Server:TlsNames)");
                return false;
            }

            using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            if (!Chains(server, ca, out var problem))
            {
                refusal("the server's certificate is not from the pinned CA: " + problem);
                return false;
            }

            return true;
        };
    }

    private static bool IsCa(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority);
}

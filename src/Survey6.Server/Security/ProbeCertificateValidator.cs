using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Survey6.Server.Enrollment;
using Survey6.Server.Pki;
using Survey6.Server.Storage;

namespace Survey6.Server.Security;

/// <summary>The outcome of checking a client certificate: an identity, or the status and reason to refuse with.</summary>
public readonly record struct ProbeAuthentication(ProbeIdentity? Identity, StatusCode Code, string Reason)
{
    public bool Succeeded => Identity is not null;

    internal static ProbeAuthentication Refuse(StatusCode code, string reason) => new(null, code, reason);
}

/// <summary>
/// Accepts a client certificate only if it chains to the server's CA alone (not the system
/// store), is within its validity at the server's time, is meant for client authentication,
/// names a probe in its subject, and is a certificate the server issued to that probe and has not
/// revoked, of a probe that is not revoked. Revocation is looked up through <see cref="ProbeRevocations"/>,
/// which reads state.db once per certificate, not once per call.
/// </summary>
public sealed class ProbeCertificateValidator(ServerPki pki, ProbeStore probes, ProbeRevocations revocations, TimeProvider time)
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <param name="certificate">The client certificate of the call, if any.</param>
    /// <param name="fresh">Read the revocation state from state.db rather than memory (streams and uploads).</param>
    public ProbeAuthentication Validate(X509Certificate2? certificate, bool fresh = false)
    {
        if (certificate is null)
            return ProbeAuthentication.Refuse(StatusCode.Unauthenticated, "no client certificate");

        var now = time.GetUtcNow();
        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(pki.Authority.Certificate);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // revocation is state.db's, checked below
            chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
            chain.ChainPolicy.VerificationTime = now.UtcDateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            if (!chain.Build(certificate))
            {
                var flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s.Status);
                var reason = (flags & X509ChainStatusFlags.NotTimeValid) != 0 ? "certificate expired or not yet valid"
                    : (flags & X509ChainStatusFlags.NotValidForUsage) != 0 ? "certificate not issued for client authentication"
                    : "certificate not issued by this server's CA";
                return ProbeAuthentication.Refuse(StatusCode.PermissionDenied, reason);
            }
        }

        var probeId = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        if (!ProbeIds.IsValid(probeId))
            return ProbeAuthentication.Refuse(StatusCode.PermissionDenied, "certificate subject is not a probe id");

        var issued = revocations.Find(certificate.SerialNumber, probes.FindCertificate, fresh);
        if (issued is null || !string.Equals(issued.ProbeId, probeId, StringComparison.Ordinal))
            return ProbeAuthentication.Refuse(StatusCode.PermissionDenied, "certificate unknown to this server");
        if (issued.RevokedAt is not null || issued.ProbeRevoked || revocations.IsProbeRevoked(probeId))
            return ProbeAuthentication.Refuse(StatusCode.PermissionDenied, "certificate revoked");

        return new ProbeAuthentication(new ProbeIdentity(probeId, issued.Serial, issued.NotAfter), StatusCode.OK, "");
    }
}

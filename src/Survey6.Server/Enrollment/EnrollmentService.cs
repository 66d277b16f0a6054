using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Control;
using Survey6.Server.Diagnostics;
using Survey6.Server.Options;
using Survey6.Server.Pki;
using Survey6.Server.Security;
using Survey6.Server.Storage;

namespace Survey6.Server.Enrollment;

/// <summary>
/// survey6.v1.Enrollment: Join (token + CSR → probe id and certificate), RenewCertificate and
/// Leave (both authenticated by the probe's current certificate).
/// </summary>
public sealed class EnrollmentService(
    StateDatabase database,
    TokenStore tokens,
    ProbeStore probes,
    EventStore events,
    ServerPki pki,
    JoinRateLimiter rateLimiter,
    RenewalRateLimiter renewalLimiter,
    ServerCounters counters,
    ProbeRevocations revocations,
    ProbeRevoker revoker,
    IOptions<ServerOptions> serverOptions,
    IOptions<PolicyOptions> policyOptions,
    TimeProvider time,
    ILogger<EnrollmentService> logger) : Contracts.V1.Enrollment.EnrollmentBase
{
    /// <summary>Trailer naming why a join was refused (malformed, unknown, expired, ...), for programs.</summary>
    public const string RefusalTrailer = "survey6-refusal";

    [AllowAnonymous] // the join token authenticates this call; the probe has no certificate yet
    public override Task<JoinResponse> Join(JoinRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var http = context.GetHttpContext();
        var remote = context.RemoteAddress();
        if (!rateLimiter.TryAcquire(ProbeCallContextExtensions.RemoteIp(http), out var firstRefusal))
        {
            throw Refuse(remote, "rate-limited", StatusCode.ResourceExhausted,
                "join refused: rate-limited: too many attempts from this address, try again later", recordEvent: firstRefusal);
        }

        if (!JoinToken.TryParse(request.Token, out _, out _))
            throw Refuse(remote, TokenRefusal.Malformed);
        var publicKey = ReadSigningRequest(request.CsrDer)
            ?? throw Refuse(remote, "bad-csr", StatusCode.InvalidArgument, "join refused: bad-csr: csr_der is not a PKCS#10 request with a valid signature and an ECDSA P-256/P-384 or RSA >= 2048 key");
        var facts = request.Facts ?? new HostFacts();
        if (HostFactLimits.CheckAndCut(facts) is { } factsProblem)
            throw Refuse(remote, "bad-facts", StatusCode.InvalidArgument, "join refused: bad-facts: " + factsProblem);

        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        var (refusal, token) = tokens.Consume(connection, transaction, request.Token);
        if (refusal != TokenRefusal.None)
        {
            transaction.Rollback();
            throw Refuse(remote, refusal);
        }

        string probeId;
        do
        {
            probeId = ProbeIds.New();
        }
        while (ProbeStore.Exists(connection, transaction, probeId));

        using var certificate = Issue(probeId, publicKey);
        var labels = new SortedDictionary<string, string>(facts.Labels, StringComparer.Ordinal);
        foreach (var (key, value) in token!.Labels)
            labels[key] = value; // the operator's labels win over what the host says about itself
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        probes.Insert(connection, transaction, new ProbeRecord(
            probeId, ProbeStates.Pending, facts.Hostname, labels, JsonFormatter.Default.Format(facts), token.Id,
            time.GetUtcNow(), remote, certificate.SerialNumber, notAfter, null, null));
        EventStore.Append(connection, transaction, time, EventKinds.ProbeJoined, probeId, remote, $"token {token.Id}; host {facts.Hostname}");
        transaction.Commit();

        counters.Increment(ServerCounters.JoinAccepted);
        ServerLog.ProbeJoined(logger, probeId, remote, token.Id);
        var response = new JoinResponse
        {
            ProbeId = probeId,
            CertificateDer = ByteString.CopyFrom(certificate.RawData),
            NotAfter = Timestamp.FromDateTimeOffset(notAfter),
            InitialPolicy = policyOptions.Value.ToPolicy(),
        };
        response.CaChainDer.Add(ByteString.CopyFrom(pki.Authority.Certificate.RawData));
        return Task.FromResult(response);
    }

    public override Task<RenewResponse> RenewCertificate(RenewRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var identity = context.GetProbeIdentity();
        var remote = context.RemoteAddress();
        if (!renewalLimiter.TryAcquire(identity.ProbeId, out var firstRefusal))
        {
            var limit = renewalLimiter.Limit;
            throw RefuseRenewal(identity.ProbeId, remote, "rate-limited", StatusCode.ResourceExhausted,
                $"renewal refused: rate-limited: at most {limit.PermitLimit} renewals per probe within {limit.Window}; try again later", firstRefusal);
        }

        var publicKey = ReadSigningRequest(request.CsrDer)
            ?? throw new RpcException(new Status(StatusCode.InvalidArgument, "csr_der is not a PKCS#10 request with a valid signature and a supported key"));
        using var certificate = Issue(identity.ProbeId, publicKey);
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        if (!probes.RecordRenewal(identity.ProbeId, certificate.SerialNumber, notAfter, remote))
        {
            // Revoked after this call was authenticated (or by another process): the certificate was never recorded or sent.
            revocations.ProbeRevoked(identity.ProbeId);
            throw RefuseRenewal(identity.ProbeId, remote, "revoked", StatusCode.PermissionDenied, "client certificate refused: certificate revoked", recordEvent: true);
        }

        ServerLog.CertificateRenewed(logger, identity.ProbeId, certificate.SerialNumber);
        var response = new RenewResponse
        {
            CertificateDer = ByteString.CopyFrom(certificate.RawData),
            NotAfter = Timestamp.FromDateTimeOffset(notAfter),
        };
        response.CaChainDer.Add(ByteString.CopyFrom(pki.Authority.Certificate.RawData));
        return Task.FromResult(response);
    }

    public override Task<LeaveResponse> Leave(LeaveRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var identity = context.GetProbeIdentity();
        var reason = request.Reason.Length > 500 ? request.Reason[..500] : request.Reason;
        revoker.Leave(identity.ProbeId, reason, context.RemoteAddress());
        ServerLog.ProbeLeft(logger, identity.ProbeId, reason);
        return Task.FromResult(new LeaveResponse());
    }

    private X509Certificate2 Issue(string probeId, PublicKey publicKey)
    {
        var options = serverOptions.Value;
        var now = time.GetUtcNow();
        return pki.Authority.IssueProbeCertificate(probeId, publicKey, now - options.ClockSkewAllowance, now + options.ProbeCertificateLifetime);
    }

    /// <summary>The CSR's public key if its self-signature verifies and the key is one we issue for; subject and extensions are ignored.</summary>
    internal static PublicKey? ReadSigningRequest(ByteString der)
    {
        if (der.IsEmpty)
            return null;
        try
        {
            var csr = CertificateRequest.LoadSigningRequest(der.ToByteArray(), HashAlgorithmName.SHA256, CertificateRequestLoadOptions.Default);
            using (var ec = csr.PublicKey.GetECDsaPublicKey())
            {
                if (ec is not null)
                    return ec.KeySize is 256 or 384 ? csr.PublicKey : null;
            }

            using var rsa = csr.PublicKey.GetRSAPublicKey();
            return rsa is { KeySize: >= 2048 } ? csr.PublicKey : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private RpcException RefuseRenewal(string probeId, string remote, string reason, StatusCode code, string message, bool recordEvent)
    {
        counters.Increment(ServerCounters.RenewRefusedPrefix + reason);
        if (recordEvent)
        {
            ServerLog.RenewalRefused(logger, probeId, remote, reason);
            events.Append(EventKinds.AuthenticationRefused, probeId, remote, "/survey6.v1.Enrollment/RenewCertificate: renewal " + reason);
        }

        return new RpcException(new Status(code, message), new Metadata { { RefusalTrailer, reason } });
    }

    private RpcException Refuse(string remote, TokenRefusal refusal) =>
        Refuse(remote, refusal.Name(), StatusCode.PermissionDenied, "join refused: token " + refusal.Name());

    private RpcException Refuse(string remote, string reason, StatusCode code, string message, bool recordEvent = true)
    {
        counters.Increment(ServerCounters.JoinRefusedPrefix + reason);
        if (recordEvent)
        {
            ServerLog.JoinRefused(logger, remote, reason);
            events.Append(EventKinds.JoinRefused, null, remote, reason);
        }

        return new RpcException(new Status(code, message), new Metadata { { RefusalTrailer, reason } });
    }
}

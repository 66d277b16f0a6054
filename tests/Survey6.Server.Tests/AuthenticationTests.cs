using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Survey6.Contracts.V1;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>Every RPC but Join needs a certificate from this server's CA that it has not revoked.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class AuthenticationTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Renew_without_a_certificate_is_unauthenticated()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => RenewAsync(null));
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains("no client certificate", e.Status.Detail, StringComparison.Ordinal);
        AssertRefusalRecorded("no client certificate");
    }

    [Fact]
    public async Task Repeated_refusals_are_all_counted_but_recorded_once_a_minute()
    {
        for (int i = 0; i < 5; i++)
            await Assert.ThrowsAsync<RpcException>(() => RenewAsync(null));
        Assert.Equal(5, _server.Counters.Get("auth.refused.no_client_certificate"));
        Assert.Single(_server.Events.Recent(20, EventKinds.AuthenticationRefused));

        _server.Time.Advance(TimeSpan.FromMinutes(1));
        await Assert.ThrowsAsync<RpcException>(() => RenewAsync(null));
        Assert.Equal(2, _server.Events.Recent(20, EventKinds.AuthenticationRefused).Count);
    }

    [Fact]
    public async Task Renew_with_a_certificate_from_another_ca_is_refused()
    {
        // Same shape as a real probe certificate, even naming a real probe: only the issuer differs.
        var (joined, _) = await _server.JoinAsync(_server.CreateToken());
        using var foreign = ForeignCertificate(joined.ProbeId);
        var e = await Assert.ThrowsAsync<RpcException>(() => RenewAsync(foreign));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("not issued by this server's CA", e.Status.Detail, StringComparison.Ordinal);
        AssertRefusalRecorded("not issued by this server's CA");
    }

    [Fact]
    public async Task Leave_revokes_the_certificate_and_later_calls_are_refused()
    {
        var (joined, certificate) = await _server.JoinAsync(_server.CreateToken());
        await _server.Enrollment(certificate).LeaveAsync(new LeaveRequest { Reason = "decommissioned" });

        var probe = _server.Probes.Get(joined.ProbeId)!;
        Assert.Equal(ProbeStates.Revoked, probe.State);
        Assert.NotNull(probe.LeftAt);
        Assert.Equal("decommissioned", probe.LeaveReason);
        Assert.NotNull(_server.Probes.FindCertificate(certificate.SerialNumber)!.RevokedAt);
        Assert.Contains(_server.Events.Recent(10, EventKinds.ProbeLeft), e => e.ProbeId == joined.ProbeId);

        var e = await Assert.ThrowsAsync<RpcException>(() => RenewAsync(certificate));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("revoked", e.Status.Detail, StringComparison.Ordinal);
        AssertRefusalRecorded("certificate revoked");
    }

    [Fact]
    public async Task Expired_certificate_is_refused()
    {
        var (_, certificate) = await _server.JoinAsync(_server.CreateToken());
        _server.Time.Advance(TimeSpan.FromDays(31));
        var e = await Assert.ThrowsAsync<RpcException>(() => RenewAsync(certificate));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("expired", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Renew_issues_a_new_certificate_for_the_same_probe()
    {
        var (joined, certificate) = await _server.JoinAsync(_server.CreateToken());
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        _server.Time.Advance(TimeSpan.FromDays(20));
        var renewed = await _server.Enrollment(certificate).RenewCertificateAsync(new RenewRequest { CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key)) });

        using var issued = X509CertificateLoader.LoadCertificate(renewed.CertificateDer.Span);
        Assert.Equal(joined.ProbeId, issued.GetNameInfo(X509NameType.SimpleName, false));
        Assert.NotEqual(certificate.SerialNumber, issued.SerialNumber);
        Assert.True(issued.NotAfter > certificate.NotAfter);
        Assert.Equal(issued.SerialNumber, _server.Probes.Get(joined.ProbeId)!.CertificateSerial);
        Assert.Contains(_server.Events.Recent(10, EventKinds.CertificateRenewed), e => e.ProbeId == joined.ProbeId);
    }

    [Fact]
    public async Task The_probe_id_comes_from_the_certificate_not_the_request()
    {
        var token = _server.CreateToken(uses: 2);
        var (alice, aliceCertificate) = await _server.JoinAsync(token);
        var (bob, _) = await _server.JoinAsync(token);

        // Alice asks for a certificate naming Bob: she gets one naming herself.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var renewed = await _server.Enrollment(aliceCertificate).RenewCertificateAsync(
            new RenewRequest { CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key, "CN=" + bob.ProbeId)) });
        using var issued = X509CertificateLoader.LoadCertificate(renewed.CertificateDer.Span);
        Assert.Equal(alice.ProbeId, issued.GetNameInfo(X509NameType.SimpleName, false));

        // Alice leaving affects Alice only.
        await _server.Enrollment(aliceCertificate).LeaveAsync(new LeaveRequest());
        Assert.Equal(ProbeStates.Revoked, _server.Probes.Get(alice.ProbeId)!.State);
        Assert.Equal(ProbeStates.Pending, _server.Probes.Get(bob.ProbeId)!.State);
    }

    [Fact]
    public async Task Join_works_with_or_without_a_client_certificate()
    {
        var (_, certificate) = await _server.JoinAsync(_server.CreateToken());
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await _server.Enrollment(certificate).JoinAsync(new JoinRequest
        {
            Token = _server.CreateToken(),
            CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key)),
        });
        Assert.StartsWith("p-", response.ProbeId, StringComparison.Ordinal);
    }

    private async Task<RenewResponse> RenewAsync(X509Certificate2? certificate)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return await _server.Enrollment(certificate).RenewCertificateAsync(new RenewRequest { CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key)) });
    }

    private void AssertRefusalRecorded(string reason)
    {
        Assert.Contains(_server.Events.Recent(20, EventKinds.AuthenticationRefused),
            e => e.Detail.Contains("/survey6.v1.Enrollment/RenewCertificate", StringComparison.Ordinal) && e.Detail.Contains(reason, StringComparison.Ordinal));
        Assert.True(_server.Counters.Sum("auth.refused.") > 0);
    }

    private static X509Certificate2 ForeignCertificate(string probeId)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=survey6 CA impostor", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + probeId, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), [0x42, 1, 2, 3, 4, 5, 6, 7]);
        return ServerHarness.WithKey(issued, key);
    }
}

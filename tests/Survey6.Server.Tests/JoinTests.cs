using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Survey6.Contracts.V1;
using Survey6.Server.Diagnostics;
using Survey6.Server.Enrollment;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class JoinTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Valid_token_yields_a_client_certificate_named_by_the_probe_id()
    {
        var token = _server.CreateToken(labels: new Dictionary<string, string> { ["site"] = "operator", ["rack"] = "r1" });
        var facts = new HostFacts { Hostname = "edge-1", Os = "Debian", Kernel = "6.1", SoftwareVersion = "0.1.0" };
        facts.Labels["site"] = "probe-says";
        facts.Labels["role"] = "edge";
        facts.Interfaces.Add(new Interface { Name = "eth0", Mac = "02:00:00:00:00:01", Addresses = { "2001:db8::1/64" } });
        facts.Location = new Location { Latitude = 52.1, Longitude = 4.3, Country = "NL", City = "Den Haag" };

        var (response, certificate) = await _server.JoinAsync(token, facts);

        Assert.True(ProbeIds.IsValid(response.ProbeId), response.ProbeId);
        Assert.Equal(response.ProbeId, certificate.GetNameInfo(X509NameType.SimpleName, false));
        Assert.Equal($"CN={response.ProbeId}", certificate.Subject);
        Assert.Equal(_server.Pki.Authority.Certificate.Subject, certificate.Issuer);
        var usage = certificate.Extensions.OfType<X509KeyUsageExtension>().Single();
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);
        var eku = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Equal("1.3.6.1.5.5.7.3.2", Assert.Single(eku.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()).Value);
        Assert.False(certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        var lifetime = certificate.NotAfter.ToUniversalTime() - _server.Time.GetUtcNow().UtcDateTime;
        Assert.InRange(lifetime, TimeSpan.FromDays(30) - TimeSpan.FromMinutes(1), TimeSpan.FromDays(30) + TimeSpan.FromMinutes(1));
        Assert.Equal(certificate.NotAfter.ToUniversalTime(), response.NotAfter.ToDateTime(), TimeSpan.FromSeconds(1));
        Assert.Equal(_server.Pki.Authority.Certificate.RawData, Assert.Single(response.CaChainDer).ToByteArray());
        Assert.Equal(1, response.InitialPolicy.Version);

        var probe = _server.Probes.Get(response.ProbeId)!;
        Assert.Equal(ProbeStates.Pending, probe.State);
        Assert.Equal("edge-1", probe.Hostname);
        Assert.Equal(certificate.SerialNumber, probe.CertificateSerial);
        // The token's labels (set by the operator) win over the host's own.
        Assert.Equal(new Dictionary<string, string> { ["rack"] = "r1", ["role"] = "edge", ["site"] = "operator" }, probe.Labels);
        using var stored = JsonDocument.Parse(probe.FactsJson);
        Assert.Equal("Den Haag", stored.RootElement.GetProperty("location").GetProperty("city").GetString());
        Assert.Equal(1, _server.Tokens.List().Single(t => token.StartsWith(t.Id, StringComparison.Ordinal)).Used);
        Assert.Contains(_server.Events.Recent(10, EventKinds.ProbeJoined), e => e.ProbeId == response.ProbeId);
    }

    [Fact]
    public async Task Serial_numbers_are_random_and_probe_ids_unique()
    {
        var token = _server.CreateToken(uses: 3);
        var joins = new[] { await _server.JoinAsync(token), await _server.JoinAsync(token), await _server.JoinAsync(token) };
        Assert.Equal(3, joins.Select(j => j.Response.ProbeId).Distinct().Count());
        Assert.Equal(3, joins.Select(j => j.Certificate.SerialNumber).Distinct().Count());
        Assert.All(joins, j => Assert.Equal(32, j.Certificate.SerialNumber.Length)); // 128 bits
    }

    [Fact]
    public async Task Malformed_token_is_refused_as_malformed()
    {
        await AssertRefusedAsync("not-a-token", "malformed");
        await AssertRefusedAsync("ABCDEF.0123456789abcdef", "malformed"); // uppercase is outside the alphabet
    }

    [Fact]
    public async Task Unknown_token_is_refused_as_unknown()
    {
        await AssertRefusedAsync("zzzzzz.0123456789abcdef", "unknown");
        // A known id with a wrong secret reads the same: the id alone gives nothing away.
        var token = _server.CreateToken();
        await AssertRefusedAsync(token[..7] + "0123456789abcdef", "unknown");
    }

    [Fact]
    public async Task Revoked_token_is_refused_as_revoked()
    {
        var token = _server.CreateToken();
        Assert.True(_server.Tokens.Revoke(token[..6]));
        await AssertRefusedAsync(token, "revoked");
    }

    [Fact]
    public async Task Used_up_token_is_refused_as_used_up()
    {
        var token = _server.CreateToken(uses: 1);
        await _server.JoinAsync(token);
        await AssertRefusedAsync(token, "used-up");
    }

    [Fact]
    public async Task Expired_token_is_refused_as_expired()
    {
        var token = _server.CreateToken(ttl: TimeSpan.FromHours(1));
        _server.Time.Advance(TimeSpan.FromHours(1));
        await AssertRefusedAsync(token, "expired");
    }

    [Fact]
    public async Task A_request_with_a_bad_signature_is_refused_and_does_not_use_the_token()
    {
        var token = _server.CreateToken();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = ServerHarness.Csr(key);
        csr[^5] ^= 0x55; // inside the signature
        var e = await Assert.ThrowsAsync<RpcException>(() => _server.Enrollment().JoinAsync(new JoinRequest { Token = token, CsrDer = ByteString.CopyFrom(csr) }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("bad-csr", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(0, _server.Tokens.List().Single(t => t.Id == token[..6]).Used);
    }

    [Fact]
    public async Task A_weak_rsa_key_is_refused()
    {
        var token = _server.CreateToken();
        using var rsa = RSA.Create(1024);
        var csr = new CertificateRequest("CN=x", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1).CreateSigningRequest();
        var e = await Assert.ThrowsAsync<RpcException>(() => _server.Enrollment().JoinAsync(new JoinRequest { Token = token, CsrDer = ByteString.CopyFrom(csr) }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
    }

    [Fact]
    public async Task A_csr_asking_for_another_name_more_names_and_a_ca_certificate_gets_none_of_them()
    {
        var (victim, _) = await _server.JoinAsync(_server.CreateToken());
        var token = _server.CreateToken();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={victim.ProbeId}, O=survey6", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("server.example");
        names.AddDnsName(victim.ProbeId);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));

        var response = await _server.Enrollment().JoinAsync(new JoinRequest
        {
            Token = token,
            CsrDer = ByteString.CopyFrom(request.CreateSigningRequest()),
            Facts = new HostFacts { Hostname = "attacker" },
        });
        using var issued = X509CertificateLoader.LoadCertificate(response.CertificateDer.Span);

        Assert.NotEqual(victim.ProbeId, response.ProbeId);
        Assert.Equal($"CN={response.ProbeId}", issued.Subject);
        Assert.DoesNotContain(issued.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames()), n => n != response.ProbeId);
        Assert.False(issued.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, issued.Extensions.OfType<X509KeyUsageExtension>().Single().KeyUsages);
        // Only the key is taken from the request.
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), issued.PublicKey.ExportSubjectPublicKeyInfo());
    }

    private async Task AssertRefusedAsync(string token, string reason)
    {
        var before = _server.Counters.Get(ServerCounters.JoinRefusedPrefix + reason);
        var e = await Assert.ThrowsAsync<RpcException>(() => _server.JoinAsync(token));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Equal("join refused: token " + reason, e.Status.Detail);
        Assert.Equal(reason, e.Trailers.GetValue(EnrollmentService.RefusalTrailer));
        Assert.Equal(before + 1, _server.Counters.Get(ServerCounters.JoinRefusedPrefix + reason));
        Assert.Contains(_server.Events.Recent(50, EventKinds.JoinRefused), ev => ev.Detail == reason && ev.Remote == "127.0.0.1");
    }
}

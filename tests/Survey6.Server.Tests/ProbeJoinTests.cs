using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Survey6.Contracts;
using Survey6.Contracts.V1;
using Survey6.Probe.Join;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ProbeJoinTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string StateDirectory => Path.Combine(_server.Root, "probe");

    [Fact]
    public async Task Join_writes_an_owner_only_state_directory()
    {
        var token = _server.CreateToken(labels: new Dictionary<string, string> { ["site"] = "lab" });
        var result = await ProbeJoinClient.JoinAsync(Settings(token, _server.Pki.Authority.Pin,
            new Dictionary<string, string> { ["role"] = "edge" }, new Location { Latitude = 1, Longitude = 2, Country = "NL" }));

        var state = new ProbeStateDirectory(StateDirectory);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state.Root));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state.KeyPath));
        Assert.Equal(result.ProbeId, state.ReadProbeId());

        using var certificate = X509Certificate2.CreateFromPemFile(state.CertificatePath, state.KeyPath);
        Assert.Equal(result.ProbeId, certificate.GetNameInfo(X509NameType.SimpleName, false));
        using var ca = X509CertificateLoader.LoadCertificateFromFile(state.CaPath);
        Assert.Equal(_server.Pki.Authority.Pin, CaPin.Compute(ca));

        using var json = JsonDocument.Parse(File.ReadAllText(state.ProbeJsonPath));
        Assert.Equal(_server.GrpcUrl.ToString().TrimEnd('/'), json.RootElement.GetProperty("server").GetString());
        Assert.Equal("900s", json.RootElement.GetProperty("policy").GetProperty("rotateAge").GetString());

        var probe = _server.Probes.Get(result.ProbeId)!;
        Assert.Equal("edge", probe.Labels["role"]);
        Assert.Equal("lab", probe.Labels["site"]);
        using var facts = JsonDocument.Parse(probe.FactsJson);
        Assert.False(string.IsNullOrEmpty(facts.RootElement.GetProperty("hostname").GetString()));
        Assert.False(string.IsNullOrEmpty(facts.RootElement.GetProperty("kernel").GetString()));
        Assert.Contains(facts.RootElement.GetProperty("interfaces").EnumerateArray(), i => i.GetProperty("name").GetString() == "lo");

        // The issued certificate works for authenticated calls.
        await _server.Enrollment(certificate).LeaveAsync(new LeaveRequest());
    }

    [Fact]
    public async Task A_wrong_ca_hash_refuses_the_server_before_the_token_is_sent()
    {
        var token = _server.CreateToken();
        var wrongPin = "sha256:" + new string('0', 64);
        var e = await Assert.ThrowsAsync<ProbeJoinException>(() => ProbeJoinClient.JoinAsync(Settings(token, wrongPin)));
        Assert.Contains("does not match --ca-hash", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, _server.Tokens.List().Single().Used);
        Assert.Empty(_server.Events.Recent(10));
        Assert.False(Directory.Exists(StateDirectory));
    }

    [Fact]
    public async Task A_refused_token_is_reported_with_its_reason()
    {
        var e = await Assert.ThrowsAsync<ProbeJoinException>(() => ProbeJoinClient.JoinAsync(Settings("zzzzzz.0123456789abcdef", _server.Pki.Authority.Pin)));
        Assert.Equal("join refused: token unknown", e.Message);
        Assert.False(Directory.Exists(StateDirectory));
    }

    [Fact]
    public async Task A_joined_state_directory_is_not_overwritten()
    {
        var token = _server.CreateToken(uses: 2);
        var first = await ProbeJoinClient.JoinAsync(Settings(token, _server.Pki.Authority.Pin));
        var e = await Assert.ThrowsAsync<ProbeJoinException>(() => ProbeJoinClient.JoinAsync(Settings(token, _server.Pki.Authority.Pin)));
        Assert.Contains(first.ProbeId, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ca_that_matches_the_pin_but_did_not_sign_the_server_certificate_is_refused()
    {
        using var other = CreateCa("CN=other");
        var pin = CaPin.Compute(other);
        var e = Assert.Throws<ProbeJoinException>(() => PinnedCa.Find(_server.Pki.ServerCertificate, [other, _server.Pki.Authority.PublicCertificate], pin));
        Assert.Contains("did not sign", e.Message, StringComparison.Ordinal);
        Assert.Equal(_server.Pki.Authority.Certificate.RawData, PinnedCa.Find(_server.Pki.ServerCertificate, [other, _server.Pki.Authority.PublicCertificate], _server.Pki.Authority.Pin).RawData);
    }

    private JoinSettings Settings(string token, string pin, IReadOnlyDictionary<string, string>? labels = null, Location? location = null) =>
        new(_server.GrpcUrl, token, pin, StateDirectory, labels ?? new Dictionary<string, string>(), location) { Timeout = TimeSpan.FromSeconds(15) };

    private static X509Certificate2 CreateCa(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }
}

using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Survey6.Contracts;
using Survey6.Server.Options;
using Survey6.Server.Pki;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class PkiTests : IDisposable
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private readonly string _root = TempDirectory.Create();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public void First_start_creates_an_owner_only_directory_with_a_ca_and_a_tls_certificate()
    {
        var dataDirectory = Path.Combine(_root, "data", "server");
        using var pki = Create(dataDirectory);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dataDirectory));
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(pki.Directory.CaKey));
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(pki.Directory.ServerKey));

        var ca = pki.Authority.Certificate;
        Assert.Equal(ca.Subject, ca.Issuer);
        Assert.True(ca.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        using (var key = ca.GetECDsaPublicKey())
            Assert.Equal(256, key!.KeySize);
        Assert.InRange((ca.NotAfter - ca.NotBefore).TotalDays, 3650, 3651);

        var tls = pki.ServerCertificate;
        Assert.True(tls.HasPrivateKey);
        Assert.Equal(ca.Subject, tls.Issuer);
        var san = tls.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Contains("localhost", san.EnumerateDnsNames());
        Assert.Contains(Dns.GetHostName(), san.EnumerateDnsNames());
        Assert.Contains(IPAddress.Loopback, san.EnumerateIPAddresses());
        Assert.Contains(IPAddress.IPv6Loopback, san.EnumerateIPAddresses());
        Assert.True(Survey6.Probe.Join.PinnedCa.Chains(tls, pki.Authority.PublicCertificate, out var problem), problem);
    }

    [Fact]
    public void Restart_keeps_the_ca_and_reissues_the_tls_certificate_when_names_change()
    {
        string pin, serial;
        using (var first = Create(_root))
        {
            pin = first.Authority.Pin;
            serial = first.ServerCertificate.SerialNumber;
        }

        using (var same = Create(_root))
        {
            Assert.Equal(pin, same.Authority.Pin);
            Assert.Equal(serial, same.ServerCertificate.SerialNumber);
        }

        using var renamed = Create(_root, o => o.TlsNames = ["c2.example.net", "2001:db8::53"]);
        Assert.Equal(pin, renamed.Authority.Pin);
        Assert.NotEqual(serial, renamed.ServerCertificate.SerialNumber);
        var san = renamed.ServerCertificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["c2.example.net"], san.EnumerateDnsNames());
        Assert.Equal([IPAddress.Parse("2001:db8::53")], san.EnumerateIPAddresses());
    }

    [Fact]
    public void Tls_certificate_is_reissued_when_a_third_of_its_life_is_left()
    {
        string serial;
        using (var first = Create(_root))
            serial = first.ServerCertificate.SerialNumber;
        _time.Advance(TimeSpan.FromDays(250));
        using var later = Create(_root);
        Assert.NotEqual(serial, later.ServerCertificate.SerialNumber);
    }

    [Fact]
    public void Loosened_key_file_mode_is_tightened_on_start()
    {
        string keyPath;
        using (var first = Create(_root))
            keyPath = first.Directory.CaKey;
        File.SetUnixFileMode(keyPath, OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using var again = Create(_root);
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(keyPath));
    }

    [Fact]
    public void Pin_is_the_sha256_of_the_subject_public_key_info()
    {
        using var pki = Create(_root);
        var expected = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(pki.Authority.Certificate.PublicKey.ExportSubjectPublicKeyInfo()));
        Assert.Equal(expected, pki.Authority.Pin);
        Assert.True(CaPin.TryParse(expected.ToUpperInvariant().Replace("SHA256:", "sha256:", StringComparison.Ordinal), out var parsed));
        Assert.Equal(expected, parsed);
        Assert.False(CaPin.TryParse("sha256:abc", out _));
        Assert.False(CaPin.TryParse(expected[7..], out _));
    }

    private ServerPki Create(string dataDirectory, Action<ServerOptions>? configure = null)
    {
        var options = new ServerOptions { DataDirectory = dataDirectory };
        configure?.Invoke(options);
        return new ServerPki(Microsoft.Extensions.Options.Options.Create(options), _time);
    }
}

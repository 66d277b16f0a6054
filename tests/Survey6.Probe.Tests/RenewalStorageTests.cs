using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Survey6.Probe.Join;
using Survey6.Probe.Tests.Support;
using Survey6.Probe.Uplink;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>A renewed key and certificate are stored so that the pair on disk always matches, whatever moment a crash hits.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class RenewalStorageTests
{
    [Fact]
    public void A_renewal_interrupted_between_its_renames_is_completed_and_a_half_written_one_is_dropped()
    {
        using var dir = new TempDirectory();
        var state = new ProbeStateDirectory(dir.Path);
        var (oldKey, oldCertificate) = SelfSigned("p-test");
        File.WriteAllText(state.KeyPath, oldKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(state.CertificatePath, oldCertificate.ExportCertificatePem());
        File.WriteAllText(state.ProbeJsonPath, new JsonObject { ["probe_id"] = "p-test", ["server"] = "https://127.0.0.1:1" }.ToJsonString());

        var (newKey, newCertificate) = SelfSigned("p-test");
        state.WriteRenewed(newKey, newCertificate);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state.KeyPath));
        using (var loaded = state.LoadClientCertificate())
            Assert.Equal(newCertificate.SerialNumber, loaded.SerialNumber);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.new"));
        Assert.Equal(newCertificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ"), JsonNode.Parse(File.ReadAllText(state.ProbeJsonPath))!["not_after"]!.GetValue<string>());

        // Died after the key's rename, before the certificate's: the next load finishes the job.
        var (thirdKey, thirdCertificate) = SelfSigned("p-test");
        File.WriteAllText(state.KeyPath, thirdKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(state.CertificatePath + ".new", thirdCertificate.ExportCertificatePem());
        using (var loaded = state.LoadClientCertificate())
            Assert.Equal(thirdCertificate.SerialNumber, loaded.SerialNumber);
        Assert.False(File.Exists(state.CertificatePath + ".new"));

        // Died before the key's rename: the old pair is intact, the half-written renewal goes.
        var (fourthKey, fourthCertificate) = SelfSigned("p-test");
        File.WriteAllText(state.KeyPath + ".new", fourthKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(state.CertificatePath + ".new", fourthCertificate.ExportCertificatePem());
        using (var loaded = state.LoadClientCertificate())
            Assert.Equal(thirdCertificate.SerialNumber, loaded.SerialNumber);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.new"));

        // Renewal is due two thirds into the validity, counted from not-before.
        var due = CertificateRenewer.DueAt(thirdCertificate, 2.0 / 3.0);
        var lifetime = thirdCertificate.NotAfter - thirdCertificate.NotBefore;
        Assert.Equal(thirdCertificate.NotBefore.ToUniversalTime() + lifetime * (2.0 / 3.0), due.UtcDateTime, TimeSpan.FromSeconds(1));
    }

    private static (ECDsa Key, X509Certificate2 Certificate) SelfSigned(string name)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        return (key, request.CreateSelfSigned(now.AddMinutes(-1), now.AddDays(30)));
    }
}

using Survey6.Contracts;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Survey6.Contracts.V1;

namespace Survey6.Probe.Join;

/// <summary>
/// The probe's identity on disk (default /var/lib/survey6/probe, 0700): key.pem (0600, never
/// leaves the host), cert.pem, ca.pem (the pinned CA, the only trust anchor for the server) and
/// probe.json (probe id, server URL, pin, initial policy). probe.json is written last, so its
/// presence means a complete join.
/// </summary>
public sealed class ProbeStateDirectory(string path)
{
    public string Root { get; } = Path.GetFullPath(path);

    public string KeyPath => Path.Combine(Root, "key.pem");

    public string CertificatePath => Path.Combine(Root, "cert.pem");

    public string CaPath => Path.Combine(Root, "ca.pem");

    public string ProbeJsonPath => Path.Combine(Root, "probe.json");

    public bool IsJoined => File.Exists(ProbeJsonPath);

    /// <summary>The probe id recorded by an earlier join, or null.</summary>
    public string? ReadProbeId()
    {
        if (!IsJoined)
            return null;
        var json = JsonNode.Parse(File.ReadAllText(ProbeJsonPath));
        return json?["probe_id"]?.GetValue<string>();
    }

    public void Write(ECDsa key, X509Certificate2 certificate, X509Certificate2 ca, Uri server, string pin, JoinResponse response)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(ca);
        ArgumentNullException.ThrowIfNull(response);
        SecureFiles.CreateOwnerOnlyDirectory(Root);
        SecureFiles.WriteAtomically(KeyPath, key.ExportPkcs8PrivateKeyPem(), SecureFiles.OwnerOnlyFile);
        SecureFiles.WriteAtomically(CertificatePath, certificate.ExportCertificatePem(), SecureFiles.PublicFile);
        SecureFiles.WriteAtomically(CaPath, ca.ExportCertificatePem(), SecureFiles.PublicFile);
        var probe = new JsonObject
        {
            ["probe_id"] = response.ProbeId,
            ["server"] = server.ToString().TrimEnd('/'),
            ["ca_pin"] = pin,
            ["not_after"] = response.NotAfter?.ToDateTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["policy"] = response.InitialPolicy is { } policy ? JsonNode.Parse(JsonFormatter.Default.Format(policy)) : null,
        };
        SecureFiles.WriteAtomically(ProbeJsonPath, probe.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", SecureFiles.OwnerOnlyFile);
    }
}

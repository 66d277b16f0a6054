using Survey6.Packets.Files;
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

    /// <summary>The policy in force, as last applied (<see cref="Policy.PolicyStore"/>).</summary>
    public string PolicyPath => Path.Combine(Root, "policy.json");

    /// <summary>The last policy the probe ran healthy with; the fallback of a crash loop.</summary>
    public string GoodPolicyPath => Path.Combine(Root, "policy-good.json");

    /// <summary>Starts since the policy in force was applied, while it has not proved itself healthy.</summary>
    public string PolicyStartsPath => Path.Combine(Root, "policy-starts.json");

    /// <summary>Present after a fall back to the last known-good policy, until a new policy is applied.</summary>
    public string PolicyFallbackPath => Path.Combine(Root, "policy-fallback.json");

    private string PendingKeyPath => KeyPath + ".new";

    private string PendingCertificatePath => CertificatePath + ".new";

    /// <summary>
    /// The client certificate with its key. Finishes a renewal that a crash interrupted between its two renames
    /// first, so the pair on disk always matches.
    /// </summary>
    public X509Certificate2 LoadClientCertificate()
    {
        CompletePendingRenewal();
        return X509Certificate2.CreateFromPemFile(CertificatePath, KeyPath);
    }

    /// <summary>
    /// Stores a renewed certificate and its new key: both are written beside the old pair (key 0600, fsynced), then
    /// renamed key first, certificate second. A crash between the renames leaves <c>cert.pem.new</c> matching
    /// <c>key.pem</c>, which <see cref="LoadClientCertificate"/> completes.
    /// </summary>
    public void WriteRenewed(ECDsa key, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(certificate);
        SecureFiles.WriteAtomically(PendingKeyPath, key.ExportPkcs8PrivateKeyPem(), SecureFiles.OwnerOnlyFile);
        SecureFiles.WriteAtomically(PendingCertificatePath, certificate.ExportCertificatePem(), SecureFiles.PublicFile);
        File.Move(PendingKeyPath, KeyPath, overwrite: true);
        File.Move(PendingCertificatePath, CertificatePath, overwrite: true);
        DurableFiles.SyncDirectory(Root);
        var json = JsonNode.Parse(File.ReadAllText(ProbeJsonPath))?.AsObject() ?? [];
        json["not_after"] = certificate.NotAfter.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        SecureFiles.WriteAtomically(ProbeJsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", SecureFiles.OwnerOnlyFile);
    }

    private void CompletePendingRenewal()
    {
        if (File.Exists(PendingKeyPath))
        {
            // Died before the key's rename: the old pair is intact; drop the half-written renewal.
            File.Delete(PendingKeyPath);
            File.Delete(PendingCertificatePath);
        }
        else if (File.Exists(PendingCertificatePath))
        {
            File.Move(PendingCertificatePath, CertificatePath, overwrite: true);
        }
    }

    /// <summary>
    /// Deletes the identity (probe.json first, so a half-done removal reads as not joined; then key, certificates and
    /// the policy files). The spool and the suspended flag stay. Returns the names removed.
    /// </summary>
    public IReadOnlyList<string> RemoveIdentity()
    {
        var removed = new List<string>();
        foreach (var path in new[] { ProbeJsonPath, KeyPath, PendingKeyPath, CertificatePath, PendingCertificatePath, CaPath, PolicyPath, GoodPolicyPath, PolicyStartsPath, PolicyFallbackPath })
        {
            if (File.Exists(path))
            {
                File.Delete(path);
                removed.Add(Path.GetFileName(path));
            }
        }

        if (Directory.Exists(Root))
            DurableFiles.SyncDirectory(Root);
        return removed;
    }

    /// <summary>The probe id recorded by an earlier join, or null.</summary>
    public string? ReadProbeId()
    {
        if (!IsJoined)
            return null;
        var json = JsonNode.Parse(File.ReadAllText(ProbeJsonPath));
        return json?["probe_id"]?.GetValue<string>();
    }

    /// <summary>The C&amp;C's URL recorded by the join (probe.json <c>server</c>), or null when not joined.</summary>
    /// <exception cref="InvalidOperationException">probe.json names no server or an unusable one.</exception>
    public Uri? ReadServer()
    {
        if (!IsJoined)
            return null;
        var url = JsonNode.Parse(File.ReadAllText(ProbeJsonPath))?["server"]?.GetValue<string>()
            ?? throw new InvalidOperationException($"{ProbeJsonPath} names no server");
        return Uri.TryCreate(url, UriKind.Absolute, out var server)
            ? server
            : throw new InvalidOperationException($"{ProbeJsonPath} names server '{url}', which is not an absolute URL");
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

using Microsoft.Extensions.Logging;
using Survey6.Data;
using Survey6.Packets.Files;

namespace Survey6.Server.Pki;

/// <summary>The server's own files under the data directory (<see cref="DataLayout"/>): its state database and, in <c>pki/</c>, its CA and TLS certificate.</summary>
public sealed class ServerDataDirectory(string root)
{
    public DataLayout Layout { get; } = new(root);

    public string Root => Layout.Root;

    public string PkiDirectory => Layout.Pki;

    public string CaCertificate => Path.Combine(PkiDirectory, "ca.pem");

    public string CaKey => Path.Combine(PkiDirectory, "ca-key.pem");

    public string ServerCertificate => Path.Combine(PkiDirectory, "server.pem");

    public string ServerKey => Path.Combine(PkiDirectory, "server-key.pem");

    public string StateDatabase => Layout.StateDatabase;

    /// <inheritdoc cref="DataLayout.AdminPasswordFile"/>
    public string AdminPasswordFile => Layout.AdminPasswordFile;

    /// <summary>The web UI's Data Protection keys (session cookies, antiforgery tokens), owner-only.</summary>
    public string DataProtectionKeys => Layout.DataProtectionKeys;

    /// <summary>
    /// Makes the data directory owner-only (created 0700, or an open one tightened, or a clear refusal:
    /// <see cref="DataLayout.EnsureOwnerOnly"/>) and creates <c>pki/</c> owner-only if missing.
    /// </summary>
    public void EnsureCreated(ILogger? logger = null)
    {
        Layout.EnsureOwnerOnly(logger);
        SecureFiles.CreateOwnerOnlyDirectory(PkiDirectory);
    }
}

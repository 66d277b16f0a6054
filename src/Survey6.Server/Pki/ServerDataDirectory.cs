using Survey6.Contracts;
namespace Survey6.Server.Pki;

/// <summary>Where the server keeps its state under the data directory.</summary>
public sealed class ServerDataDirectory(string root)
{
    public string Root { get; } = Path.GetFullPath(root);

    public string PkiDirectory => Path.Combine(Root, "pki");

    public string CaCertificate => Path.Combine(PkiDirectory, "ca.pem");

    public string CaKey => Path.Combine(PkiDirectory, "ca-key.pem");

    public string ServerCertificate => Path.Combine(PkiDirectory, "server.pem");

    public string ServerKey => Path.Combine(PkiDirectory, "server-key.pem");

    public string StateDatabase => Path.Combine(Root, "state.db");

    /// <summary>The web UI's first admin password, written owner-only by the first start; removed when one is set.</summary>
    public string AdminPasswordFile => Path.Combine(Root, "web-admin-password");

    /// <summary>Creates the data and pki directories owner-only (0700) if missing.</summary>
    public void EnsureCreated()
    {
        SecureFiles.CreateOwnerOnlyDirectory(Root);
        SecureFiles.CreateOwnerOnlyDirectory(PkiDirectory);
    }
}

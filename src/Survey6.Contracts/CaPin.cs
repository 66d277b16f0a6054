using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Survey6.Contracts;

/// <summary>
/// The CA pin a probe is given at join: <c>sha256:HEX</c>, the SHA-256 of the CA certificate's DER
/// SubjectPublicKeyInfo in lowercase hex (the form kubeadm uses for its discovery hash). Pinning the
/// key rather than the certificate lets the CA certificate be re-issued for the same key.
/// </summary>
public static class CaPin
{
    public const string Prefix = "sha256:";

    public static string Compute(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Prefix + Convert.ToHexStringLower(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>Normalises a pin given by a person: prefix required, hex of 32 bytes, any case.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out string? pin)
    {
        pin = null;
        if (text is null || !text.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
            return false;
        var hex = text[Prefix.Length..];
        if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
            return false;
        pin = Prefix + hex.ToLowerInvariant();
        return true;
    }

    public static bool Matches(X509Certificate2 certificate, string pin) =>
        string.Equals(Compute(certificate), pin, StringComparison.Ordinal);
}

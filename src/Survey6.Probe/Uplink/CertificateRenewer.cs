using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Probe.Daemon;
using Survey6.Probe.Diagnostics;
using Survey6.Probe.Join;
using Survey6.Probe.Upload;

namespace Survey6.Probe.Uplink;

/// <summary>When the daemon renews its certificate; section <c>Probe:Certificate</c>.</summary>
public sealed class CertificateOptions
{
    public const string SectionName = "Probe:Certificate";

    /// <summary>Renew once this fraction of the certificate's lifetime (not-before to not-after) has passed.</summary>
    public double RenewAfterFraction { get; set; } = 2.0 / 3.0;

    /// <summary>Wait after a failed renewal (server away, refused) before the next attempt.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest sleep between looks at the certificate (a clock step or a renewal by hand is noticed within it).</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromHours(1);
}

internal sealed class CertificateOptionsValidator : IValidateOptions<CertificateOptions>
{
    public ValidateOptionsResult Validate(string? name, CertificateOptions options)
    {
        var errors = new List<string>();
        if (options.RenewAfterFraction is <= 0.05 or >= 0.95 || double.IsNaN(options.RenewAfterFraction))
            errors.Add("Probe:Certificate:RenewAfterFraction must be above 0.05 and below 0.95");
        if (options.RetryInterval < TimeSpan.FromSeconds(1) || options.RetryInterval > TimeSpan.FromDays(1))
            errors.Add("Probe:Certificate:RetryInterval must be 1 s..1 day");
        if (options.CheckInterval < TimeSpan.FromSeconds(1) || options.CheckInterval > TimeSpan.FromDays(1))
            errors.Add("Probe:Certificate:CheckInterval must be 1 s..1 day");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Renews the probe's certificate before it expires: once <see cref="CertificateOptions.RenewAfterFraction"/> of its
/// lifetime has passed, a new P-256 key is made here, its CSR sent with RenewCertificate (authenticated by the current
/// certificate), the answer checked (our key, our probe id, the pinned CA), and key and certificate stored
/// (<see cref="ProbeStateDirectory.WriteRenewed"/>). <see cref="ProbeCredentials"/> then hands the new pair to every
/// new connection.
/// </summary>
public sealed class CertificateRenewer(ProbeCredentials credentials, IOptions<CertificateOptions> options, TimeProvider time, ILogger<CertificateRenewer> logger) : IProbeTask
{
    private readonly CertificateOptions _options = options.Value;

    public string Name => "certificate renewal";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var certificate = credentials.Current;
            var due = DueAt(certificate, _options.RenewAfterFraction);
            var now = time.GetUtcNow();
            if (now < due)
            {
                var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
                ProbeLog.CertificateRenewalDue(logger, notAfter, due);
                await Task.Delay(Min(due - now, _options.CheckInterval), time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            try
            {
                var renewed = await RenewAsync(cancellationToken).ConfigureAwait(false);
                ProbeLog.CertificateRenewed(logger, renewed.SerialNumber, new DateTimeOffset(renewed.NotAfter.ToUniversalTime(), TimeSpan.Zero));
            }
            catch (Exception e) when (e is RpcException or IOException or CryptographicException or InvalidDataException or HttpRequestException)
            {
                ProbeLog.CertificateRenewalFailed(logger, _options.RetryInterval, e.Message);
                await Task.Delay(_options.RetryInterval, time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Not-before plus <paramref name="fraction"/> of the lifetime.</summary>
    public static DateTimeOffset DueAt(X509Certificate2 certificate, double fraction)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var notBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        return notBefore + (notAfter - notBefore) * fraction;
    }

    /// <summary>One renewal now; returns the stored certificate.</summary>
    public async Task<X509Certificate2> RenewAsync(CancellationToken cancellationToken)
    {
        var state = credentials.State;
        var probeId = state.ReadProbeId() ?? throw new InvalidDataException($"{state.Root} holds no joined probe");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=" + probeId, key, HashAlgorithmName.SHA256).CreateSigningRequest();
        RenewResponse response;
        using (var connection = ProbeConnection.Open(state, credentials: credentials))
        {
            var client = new Contracts.V1.Enrollment.EnrollmentClient(connection.Channel);
            response = await client.RenewCertificateAsync(new RenewRequest { CsrDer = ByteString.CopyFrom(csr) }, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        using var issued = X509CertificateLoader.LoadCertificate(response.CertificateDer.Span);
        using var ca = X509CertificateLoader.LoadCertificateFromFile(state.CaPath);
        using (var issuedKey = issued.GetECDsaPublicKey())
        {
            if (issuedKey is null || !issuedKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
                throw new InvalidDataException("the server renewed a certificate for another key");
        }

        if (!string.Equals(issued.GetNameInfo(X509NameType.SimpleName, false), probeId, StringComparison.Ordinal))
            throw new InvalidDataException($"the renewed certificate does not name {probeId}");
        if (!PinnedCa.Chains(issued, ca, out var problem))
            throw new InvalidDataException("the renewed certificate is not from the pinned CA: " + problem);
        state.WriteRenewed(key, issued);
        return credentials.Reload();
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}

using Microsoft.Extensions.Logging;

namespace Survey6.Server.Diagnostics;

internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Information, "Created CA {Path}; probes pin it as {Pin}")]
    public static partial void CaCreated(ILogger logger, string path, string pin);

    [LoggerMessage(2, LogLevel.Information, "Issued TLS certificate for {Names}, valid until {NotAfter:o}")]
    public static partial void ServerCertificateIssued(ILogger logger, string names, DateTime notAfter);

    [LoggerMessage(3, LogLevel.Warning, "Key file {Path} had mode {Mode}; set to 0600")]
    public static partial void KeyModeTightened(ILogger logger, string path, string mode);

    [LoggerMessage(4, LogLevel.Information, "Probe {ProbeId} joined from {Remote} with token {TokenId}")]
    public static partial void ProbeJoined(ILogger logger, string probeId, string remote, string tokenId);

    [LoggerMessage(5, LogLevel.Warning, "Join from {Remote} refused: {Reason}")]
    public static partial void JoinRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(6, LogLevel.Warning, "Call to {Method} from {Remote} refused: {Reason}")]
    public static partial void AuthenticationRefused(ILogger logger, string method, string remote, string reason);

    [LoggerMessage(7, LogLevel.Information, "Probe {ProbeId} renewed its certificate; new serial {Serial}")]
    public static partial void CertificateRenewed(ILogger logger, string probeId, string serial);

    [LoggerMessage(8, LogLevel.Information, "Probe {ProbeId} left: {Reason}")]
    public static partial void ProbeLeft(ILogger logger, string probeId, string reason);

    [LoggerMessage(10, LogLevel.Warning, "Certificate renewal of probe {ProbeId} from {Remote} refused: {Reason}")]
    public static partial void RenewalRefused(ILogger logger, string probeId, string remote, string reason);

    [LoggerMessage(9, LogLevel.Information, "Listening for probes on {GrpcUrl}; operator endpoint {HttpUrl}; CA pin {Pin}")]
    public static partial void Listening(ILogger logger, string grpcUrl, string httpUrl, string pin);
}

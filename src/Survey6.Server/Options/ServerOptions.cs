using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Options;

/// <summary>The C&amp;C server's settings, section <c>Server</c> of the configuration.</summary>
public sealed class ServerOptions
{
    public const string SectionName = "Server";

    /// <summary>Holds the CA, the TLS certificate, state.db and (later) the uploaded captures.</summary>
    [Required]
    public string DataDirectory { get; set; } = "/var/lib/survey6/server";

    /// <summary>gRPC endpoint (TLS, HTTP/2) for probes: <c>ADDR:PORT</c>, <c>[V6ADDR]:PORT</c> or <c>*:PORT</c>; port 0 picks a free port.</summary>
    [Required]
    public string GrpcListen { get; set; } = "*:7443";

    /// <summary>Plain HTTP endpoint for operators (/api/v1, /metrics, /healthz); empty disables it.</summary>
    public string? HttpListen { get; set; } = "127.0.0.1:7080";

    /// <summary>
    /// Host name or address probes use to reach the server, printed in join commands. Empty: the
    /// gRPC listen address if it is a specific one, else the machine's host name.
    /// </summary>
    public string? AdvertisedHost { get; set; }

    /// <summary>Subject alternative names of the TLS certificate (DNS names or IP addresses). Empty: localhost, 127.0.0.1, ::1 and the host name.</summary>
    public List<string> TlsNames { get; set; } = [];

    [Range(typeof(TimeSpan), "1.00:00:00", "36500.00:00:00")]
    public TimeSpan CaLifetime { get; set; } = TimeSpan.FromDays(3650);

    [Range(typeof(TimeSpan), "1.00:00:00", "3650.00:00:00")]
    public TimeSpan ServerCertificateLifetime { get; set; } = TimeSpan.FromDays(365);

    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan ProbeCertificateLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Certificates start this long before issue so a probe whose clock runs slow accepts them.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan ClockSkewAllowance { get; set; } = TimeSpan.FromMinutes(5);
}

namespace Survey6.Aggregator.Connections;

/// <summary>
/// When a connection ends for lack of packets (Zeek's <c>tcp_inactivity_timeout</c>, <c>udp_inactivity_timeout</c>,
/// <c>icmp_inactivity_timeout</c>) and how long a finished or unanswered TCP connection lingers (Zeek's
/// <c>tcp_close_delay</c>, <c>tcp_reset_delay</c> and <c>tcp_attempt_delay</c>). Defaults are Zeek's.
/// </summary>
public sealed class ConnectionOptions
{
    /// <summary>The configuration section these settings bind from.</summary>
    public const string SectionName = "Connections";

    public TimeSpan TcpIdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan UdpIdleTimeout { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan IcmpIdleTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>After a TCP connection closed (FIN both ways, or a RST), a packet this much later starts a new one.</summary>
    public TimeSpan TcpCloseDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A SYN left unanswered this long ends its attempt (S0); a later packet starts a new connection.</summary>
    public TimeSpan TcpAttemptDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Throws when a setting is out of range, so a bad configuration stops the start, not a run.</summary>
    public void Validate()
    {
        foreach (var (name, value) in Settings())
        {
            if (value <= TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(name, value, Problem(name, value));
            }
        }
    }

    /// <summary>What is wrong with the settings, one sentence each (none when <see cref="Validate"/> passes).</summary>
    public IEnumerable<string> Problems() =>
        Settings().Where(s => s.Value <= TimeSpan.Zero).Select(s => Problem(s.Name, s.Value));

    private (string Name, TimeSpan Value)[] Settings() =>
    [
        (nameof(TcpIdleTimeout), TcpIdleTimeout),
        (nameof(UdpIdleTimeout), UdpIdleTimeout),
        (nameof(IcmpIdleTimeout), IcmpIdleTimeout),
        (nameof(TcpCloseDelay), TcpCloseDelay),
        (nameof(TcpAttemptDelay), TcpAttemptDelay),
    ];

    private static string Problem(string name, TimeSpan value) => $"Connections:{name} must be positive (is {value}).";

    internal long IdleTimeoutNs(byte protocol) => protocol switch
    {
        ConnectionKey.Tcp => TcpIdleTimeout.Ticks * 100,
        ConnectionKey.Udp => UdpIdleTimeout.Ticks * 100,
        _ => IcmpIdleTimeout.Ticks * 100,
    };
}

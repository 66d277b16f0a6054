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
        Positive(TcpIdleTimeout, nameof(TcpIdleTimeout));
        Positive(UdpIdleTimeout, nameof(UdpIdleTimeout));
        Positive(IcmpIdleTimeout, nameof(IcmpIdleTimeout));
        Positive(TcpCloseDelay, nameof(TcpCloseDelay));
        Positive(TcpAttemptDelay, nameof(TcpAttemptDelay));
    }

    internal long IdleTimeoutNs(byte protocol) => protocol switch
    {
        ConnectionKey.Tcp => TcpIdleTimeout.Ticks * 100,
        ConnectionKey.Udp => UdpIdleTimeout.Ticks * 100,
        _ => IcmpIdleTimeout.Ticks * 100,
    };

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name, value, $"Connections:{name} must be positive.");
        }
    }
}

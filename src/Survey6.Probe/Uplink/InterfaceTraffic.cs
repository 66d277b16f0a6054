using System.Globalization;

namespace Survey6.Probe.Uplink;

/// <summary>Bytes per second of one interface over the last sample; <see cref="LinkBytesPerSecond"/> 0 when the link speed is unknown.</summary>
public sealed record InterfaceRate(string Name, long RxBytesPerSecond, long TxBytesPerSecond, long LinkBytesPerSecond)
{
    public double Utilisation => LinkBytesPerSecond > 0 ? Math.Min(1.0, (double)(RxBytesPerSecond + TxBytesPerSecond) / LinkBytesPerSecond) : -1;
}

/// <summary>
/// Reads <c>/sys/class/net/IF/statistics/{rx,tx}_bytes</c> of the capture interfaces (all but loopback when
/// capturing on <c>any</c>) and turns successive readings into rates. One instance is shared by the uploader,
/// which samples it, and the heartbeats, which report the last rates.
/// </summary>
public sealed class InterfaceTraffic
{
    private readonly IReadOnlyList<string> _configured;
    private readonly string _sysClassNet;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private Dictionary<string, (long Rx, long Tx)> _previous = new(StringComparer.Ordinal);
    private long _previousTimestamp;
    private IReadOnlyList<InterfaceRate> _rates = [];

    public InterfaceTraffic(IReadOnlyList<string> captureInterfaces, TimeProvider time, string sysClassNet = "/sys/class/net")
    {
        _configured = captureInterfaces;
        _time = time;
        _sysClassNet = sysClassNet;
    }

    public IReadOnlyList<InterfaceRate> LastRates
    {
        get
        {
            lock (_lock)
                return _rates;
        }
    }

    /// <summary>
    /// Reads the counters; returns the bytes per second (rx + tx, all interfaces) since the previous call, or null
    /// on the first call and when no interface could be read.
    /// </summary>
    public long? Sample()
    {
        var names = _configured.Count > 0 && !_configured.Contains("any", StringComparer.Ordinal)
            ? _configured
            : Directory.Exists(_sysClassNet) ? [.. Directory.GetDirectories(_sysClassNet).Select(Path.GetFileName).OfType<string>().Where(n => n != "lo")] : [];
        var now = _time.GetTimestamp();
        var current = new Dictionary<string, (long Rx, long Tx)>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (Read(name, "rx_bytes") is { } rx && Read(name, "tx_bytes") is { } tx)
                current[name] = (rx, tx);
        }

        lock (_lock)
        {
            var seconds = _previousTimestamp == 0 ? 0 : _time.GetElapsedTime(_previousTimestamp, now).TotalSeconds;
            var rates = new List<InterfaceRate>();
            long total = 0;
            foreach (var (name, (rx, tx)) in current)
            {
                // A counter that went down: the interface was re-created; its rate starts with the next sample.
                if (seconds <= 0 || !_previous.TryGetValue(name, out var before) || rx < before.Rx || tx < before.Tx)
                    continue;
                var rxRate = (long)((rx - before.Rx) / seconds);
                var txRate = (long)((tx - before.Tx) / seconds);
                total += rxRate + txRate;
                rates.Add(new InterfaceRate(name, rxRate, txRate, LinkSpeed(name)));
            }

            _previous = current;
            _previousTimestamp = now;
            _rates = rates;
            return rates.Count == 0 ? null : total;
        }
    }

    private long? Read(string name, string counter)
    {
        try
        {
            return long.Parse(File.ReadAllText(Path.Combine(_sysClassNet, name, "statistics", counter)).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>The link speed in bytes per second; 0 when unknown (veth, tun, a link that is down report -1 or fail).</summary>
    private long LinkSpeed(string name)
    {
        try
        {
            return long.TryParse(File.ReadAllText(Path.Combine(_sysClassNet, name, "speed")).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var mbps) && mbps > 0
                ? mbps * 1_000_000 / 8
                : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}

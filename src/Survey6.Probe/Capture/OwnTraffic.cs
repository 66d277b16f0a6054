using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Survey6.Probe.Daemon;
using Survey6.Probe.Diagnostics;
using Survey6.Probe.Join;

namespace Survey6.Probe.Capture;

/// <summary>
/// The probe's own traffic with its C&amp;C, which the capture leaves out: every address the server's host (from
/// probe.json) resolves to, with the server's port. Without this a probe captures its uploads and heartbeats, spools
/// them and uploads them again, and every file carries the previous one. Resolved at start, before each control
/// stream connection and every <see cref="CaptureOptions.OwnTrafficResolveInterval"/>; when the addresses change,
/// <see cref="Changed"/> restarts the capture with the new filter. A failed resolution keeps the addresses known.
/// </summary>
public sealed class OwnTraffic : IProbeTask, IDisposable
{
    /// <summary>More addresses than this make the filter long for little gain; the first ones (sorted) are left out.</summary>
    public const int MaxAddresses = 16;

    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(10);
    private readonly string? _host;
    private readonly int _port;
    private readonly bool _enabled;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve;
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly Lock _lock = new();
    private IReadOnlyList<IPAddress> _addresses = [];
    private string? _expression;
    private DateTimeOffset? _resolvedAt;
    private string? _problem;

    /// <param name="server">The C&amp;C's URL; null when the probe is not joined (nothing to leave out).</param>
    /// <param name="enabled"><see cref="CaptureOptions.ExcludeOwnTraffic"/>.</param>
    /// <param name="interval">How often a host name is resolved again.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Where changes and failures go.</param>
    /// <param name="resolve">Name resolution; default the system resolver (tests pass their own).</param>
    public OwnTraffic(Uri? server, bool enabled, TimeSpan interval, TimeProvider time, ILogger<OwnTraffic> logger, Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        // IdnHost: without the brackets of an IPv6 literal, in the form a resolver takes.
        _host = server?.IdnHost;
        _port = server?.Port ?? 0;
        _enabled = enabled;
        _interval = interval;
        _time = time;
        _logger = logger;
        _resolve = resolve ?? Dns.GetHostAddressesAsync;
        if (Active && IPAddress.TryParse(_host, out var literal))
            Set([OwnTrafficFilter.Normalise(literal)]);
    }

    /// <summary>For the daemon: the server of the joined identity in <paramref name="state"/>, if any.</summary>
    public static OwnTraffic For(ProbeStateDirectory state, CaptureOptions options, TimeProvider time, ILogger<OwnTraffic> logger)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        var server = state.ReadServer();
        if (server is not null && !options.ExcludeOwnTraffic)
            ProbeLog.OwnTrafficCaptured(logger, server);
        return new OwnTraffic(server, options.ExcludeOwnTraffic, options.OwnTrafficResolveInterval, time, logger);
    }

    public string Name => "own traffic";

    /// <summary>True when the probe has a C&amp;C and leaves its traffic out.</summary>
    public bool Active => _enabled && !string.IsNullOrEmpty(_host);

    /// <summary>Awaited after the addresses changed (the daemon restarts the capture with the new filter).</summary>
    public Func<CancellationToken, Task>? Changed { get; set; }

    /// <summary>The BPF that matches the own traffic, or null (not active, or nothing resolved yet).</summary>
    public string? Expression
    {
        get
        {
            lock (_lock)
                return _expression;
        }
    }

    /// <summary>The filter the capture applies for <paramref name="filter"/> in force.</summary>
    public string Apply(string filter) => OwnTrafficFilter.Compose(filter, Expression);

    /// <summary>What <c>probe status</c> shows; null without a C&amp;C.</summary>
    public OwnTrafficStatus? Status()
    {
        if (string.IsNullOrEmpty(_host))
            return null;
        lock (_lock)
        {
            return new OwnTrafficStatus
            {
                LeftOut = _enabled,
                Host = _host,
                Port = _port,
                Addresses = [.. _addresses.Select(a => a.ToString())],
                ResolvedAt = _resolvedAt,
                Problem = _problem,
            };
        }
    }

    /// <summary>
    /// Resolves the server's host name again (an address literal needs nothing). Returns true when the addresses
    /// changed; <see cref="Changed"/> has run by then. Never throws for a resolution failure: the known addresses stay.
    /// </summary>
    public async Task<bool> RefreshAsync(CancellationToken cancellationToken)
    {
        if (!Active || IPAddress.TryParse(_host, out _))
            return false;
        await _refreshing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            IPAddress[] found;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(ResolveTimeout);
                found = await _resolve(_host!, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is SocketException or OperationCanceledException or ArgumentException)
            {
                Fail(e is OperationCanceledException ? $"no answer within {ResolveTimeout.TotalSeconds:0} s" : e.Message);
                return false;
            }

            var addresses = found.Select(OwnTrafficFilter.Normalise).Distinct().OrderBy(a => a.ToString(), StringComparer.Ordinal).ToList();
            if (addresses.Count == 0)
            {
                Fail("no address");
                return false;
            }

            if (addresses.Count > MaxAddresses)
            {
                ProbeLog.OwnTrafficTooManyAddresses(_logger, _host!, addresses.Count, MaxAddresses);
                addresses = addresses[..MaxAddresses];
            }

            bool changed;
            lock (_lock)
            {
                changed = !addresses.SequenceEqual(_addresses);
                _resolvedAt = _time.GetUtcNow();
                _problem = null;
            }

            if (!changed)
                return false;
            Set(addresses);
            if (Changed is { } restart)
                await restart(cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _refreshing.Release();
        }
    }

    /// <summary>Resolves the host name again every interval while the daemon runs.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (!Active || IPAddress.TryParse(_host, out _))
            return;
        using var timer = new PeriodicTimer(_interval, _time);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            await RefreshAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _refreshing.Dispose();

    private void Set(IReadOnlyList<IPAddress> addresses)
    {
        var expression = OwnTrafficFilter.Expression(addresses, _port);
        lock (_lock)
        {
            _addresses = addresses;
            _expression = expression;
            _resolvedAt ??= _time.GetUtcNow();
        }

        var listed = string.Join(", ", addresses);
        ProbeLog.OwnTrafficLeftOut(_logger, _host!, _port, listed);
    }

    private void Fail(string reason)
    {
        string? before;
        int known;
        lock (_lock)
        {
            before = _problem;
            _problem = reason;
            known = _addresses.Count;
        }

        if (before != reason)
            ProbeLog.OwnTrafficResolveFailed(_logger, _host!, reason, known);
    }
}

/// <summary>The probe's own traffic as <c>probe status</c> shows it.</summary>
public sealed record OwnTrafficStatus
{
    /// <summary>False when <c>Probe:Capture:ExcludeOwnTraffic</c> is off: the C&amp;C traffic is captured.</summary>
    public bool LeftOut { get; init; }

    /// <summary>The C&amp;C's host as probe.json names it.</summary>
    public string Host { get; init; } = "";

    public int Port { get; init; }

    /// <summary>The addresses left out (what the host resolved to last).</summary>
    public IReadOnlyList<string> Addresses { get; init; } = [];

    public DateTimeOffset? ResolvedAt { get; init; }

    /// <summary>Why the last resolution failed (the addresses above stay left out), or null.</summary>
    public string? Problem { get; init; }
}

using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;

namespace Survey6.Server.Control;

/// <summary>A probe's open control stream, as listed.</summary>
public sealed record ConnectedProbe(string ProbeId, string Remote, DateTimeOffset Since);

/// <summary>
/// The control streams open in this process, one per probe: a probe that connects again replaces
/// its older stream. Commands wake a stream through its own signal; revocation closes it.
/// </summary>
public sealed class ProbeConnections
{
    private readonly ConcurrentDictionary<string, ProbeConnection> _connections = new(StringComparer.Ordinal);

    public bool IsConnected(string probeId) => _connections.ContainsKey(probeId);

    public IReadOnlyList<ConnectedProbe> List() =>
        _connections.Values.Select(c => new ConnectedProbe(c.ProbeId, c.Remote, c.Since)).OrderBy(c => c.ProbeId, StringComparer.Ordinal).ToList();

    internal ProbeConnection Register(string probeId, string remote, DateTimeOffset since)
    {
        var connection = new ProbeConnection(probeId, remote, since);
        _connections.AddOrUpdate(probeId, connection, (_, older) =>
        {
            older.Close(new Status(StatusCode.Aborted, "replaced by a newer control stream from the same probe"));
            return connection;
        });
        return connection;
    }

    /// <summary>Forgets the stream unless a newer one replaced it already.</summary>
    internal void Unregister(ProbeConnection connection) =>
        _connections.TryRemove(new KeyValuePair<string, ProbeConnection>(connection.ProbeId, connection));

    /// <summary>Tells the probe's stream to look for commands to send.</summary>
    internal void Wake(string probeId)
    {
        if (_connections.TryGetValue(probeId, out var connection))
            connection.Wake();
    }

    internal void Close(string probeId, Status status)
    {
        if (_connections.TryGetValue(probeId, out var connection))
            connection.Close(status);
    }
}

internal sealed class ProbeConnection(string probeId, string remote, DateTimeOffset since) : IDisposable
{
    // Capacity one, extra writes dropped: any number of wake-ups before the sender looks is one look.
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _lock = new();
    private Status? _closeStatus;

    public string ProbeId { get; } = probeId;

    public string Remote { get; } = remote;

    public DateTimeOffset Since { get; } = since;

    public CancellationToken Closing => _closing.Token;

    /// <summary>Why the server closed the stream; null while open or if the client went away.</summary>
    public Status? CloseStatus
    {
        get
        {
            lock (_lock)
                return _closeStatus;
        }
    }

    public void Wake() => _wake.Writer.TryWrite(true);

    public ValueTask<bool> WaitForWakeAsync(CancellationToken cancellationToken) => _wake.Reader.ReadAsync(cancellationToken);

    public void Close(Status status)
    {
        lock (_lock)
        {
            if (_closeStatus is not null)
                return;
            _closeStatus = status;
        }

        try
        {
            _closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the stream ended on its own meanwhile
        }
    }

    public void Dispose() => _closing.Dispose();
}

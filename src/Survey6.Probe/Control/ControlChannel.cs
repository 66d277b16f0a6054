using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Survey6.Contracts.V1;
using Survey6.Probe.Join;
using ControlClient = Survey6.Contracts.V1.Control.ControlClient;

namespace Survey6.Probe.Control;

/// <summary>Where and as whom a <see cref="ControlChannel"/> connects.</summary>
public sealed record ControlChannelOptions(Uri Server, X509Certificate2 ClientCertificate, X509Certificate2 Ca)
{
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>First reconnection delay; doubles per failed attempt up to <see cref="MaxBackoff"/>, with jitter.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The stream is dropped and reopened when this many intervals pass without an ack.</summary>
    public int MissedAcksBeforeReconnect { get; init; } = 3;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where each new TLS connection takes its client certificate from (a renewal swaps it); default <see cref="ClientCertificate"/>.</summary>
    public Func<X509Certificate2>? ClientCertificateSource { get; init; }

    /// <summary>Told why a stream ended and how long until the next attempt; for the daemon's log.</summary>
    public Action<Exception, TimeSpan>? Disconnected { get; init; }

    /// <summary>
    /// Awaited before every attempt to open the stream: the daemon resolves the server's host again there, so that a
    /// server that moved is left out of the capture before the probe talks to it.
    /// </summary>
    public Func<CancellationToken, Task>? Connecting { get; init; }

    /// <summary>Reads a joined probe's state directory: server URL, certificate and key, pinned CA, heartbeat interval of its policy.</summary>
    public static ControlChannelOptions FromStateDirectory(string path)
    {
        var state = new ProbeStateDirectory(path);
        if (!state.IsJoined)
            throw new InvalidOperationException($"{state.Root} holds no joined probe (run `survey6 probe join` first)");
        var json = JsonNode.Parse(File.ReadAllText(state.ProbeJsonPath))
            ?? throw new InvalidOperationException($"{state.ProbeJsonPath} is empty");
        var server = new Uri(json["server"]?.GetValue<string>() ?? throw new InvalidOperationException($"{state.ProbeJsonPath} names no server"));
        var policy = json["policy"] is { } node ? JsonParser.Default.Parse<Policy>(node.ToJsonString()) : null;
        var options = new ControlChannelOptions(
            server,
            state.LoadClientCertificate(),
            X509CertificateLoader.LoadCertificateFromFile(state.CaPath));
        return policy?.HeartbeatInterval is { } interval && interval.ToTimeSpan() > TimeSpan.Zero
            ? options with { HeartbeatInterval = interval.ToTimeSpan() }
            : options;
    }
}

/// <summary>The server refused the probe's certificate (revoked, expired, unknown): reconnecting will not help.</summary>
public sealed class ControlChannelRefusedException : Exception
{
    public ControlChannelRefusedException()
    {
    }

    public ControlChannelRefusedException(string message)
        : base(message)
    {
    }

    public ControlChannelRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The probe's end of the control stream. <see cref="RunAsync"/> keeps one stream open to the
/// server, trusting only the pinned CA and presenting the probe's certificate, and reopens it with
/// exponential backoff and jitter when it breaks. It sends a heartbeat from the snapshot function
/// at once and then every <see cref="HeartbeatInterval"/>, stamped with the probe's clock, a
/// sequence number and the last round trip. Commands come out of <see cref="ReadCommandsAsync"/>;
/// the daemon executes each and calls <see cref="ReportResult"/>. A command the server sends again
/// after a reconnect is answered from memory, not handed out twice.
/// </summary>
public sealed class ControlChannel : IDisposable
{
    private const int RememberedCommands = 256;

    private readonly ControlChannelOptions _options;
    private readonly Func<CancellationToken, ValueTask<Heartbeat>> _snapshot;
    private readonly TimeProvider _time;
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Lock _lock = new();
    // Commands seen, in arrival order for eviction; a null result means the daemon has not answered yet.
    private readonly Dictionary<string, CommandResult?> _seen = new(StringComparer.Ordinal);
    private readonly Queue<string> _seenOrder = new();
    private Channel<ProbeMessage>? _outbox;
    private long _interval;
    private ulong _lastSentSequence;
    private long _lastSentTimestamp;
    private long _lastAckTimestamp;
    private TimeSpan? _lastRoundTrip;
    private TimeSpan? _clockSkew;

    public ControlChannel(ControlChannelOptions options, Func<CancellationToken, ValueTask<Heartbeat>> snapshot)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(snapshot);
        _options = options;
        _snapshot = snapshot;
        _time = options.Time;
        HeartbeatInterval = options.HeartbeatInterval;
    }

    /// <summary>Set it when a new policy changes the interval; the next wait uses it.</summary>
    public TimeSpan HeartbeatInterval
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _interval));
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(value, TimeSpan.Zero);
            Interlocked.Exchange(ref _interval, value.Ticks);
        }
    }

    public bool IsConnected => Volatile.Read(ref _outbox) is not null;

    /// <summary>The server's last estimate of this probe's clock minus its own.</summary>
    public TimeSpan? ClockSkew
    {
        get
        {
            lock (_lock)
                return _clockSkew;
        }
    }

    /// <summary>Commands from the server, in order, across reconnections; one reader.</summary>
    public IAsyncEnumerable<Command> ReadCommandsAsync(CancellationToken cancellationToken = default) => _commands.Reader.ReadAllAsync(cancellationToken);

    /// <summary>
    /// Answers a command. Sent now if the stream is open; otherwise the server sends the command
    /// again on the next stream and this answer goes back instead of a second execution.
    /// </summary>
    public void ReportResult(string commandId, bool ok, string message)
    {
        ArgumentNullException.ThrowIfNull(commandId);
        var result = new CommandResult { CommandId = commandId, Ok = ok, Message = message ?? "" };
        lock (_lock)
            Remember(commandId, result);
        Volatile.Read(ref _outbox)?.Writer.TryWrite(new ProbeMessage { CommandResult = result });
    }

    /// <summary>Runs until cancelled; throws <see cref="ControlChannelRefusedException"/> if the server refuses the certificate.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var handler = ProbeHttpHandler.Create(_options.Ca, () => _options.ClientCertificateSource?.Invoke() ?? _options.ClientCertificate);
        using var channel = GrpcChannel.ForAddress(_options.Server, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = false });
        var client = new ControlClient(channel);
        var failures = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_options.Connecting is { } connecting)
                await connecting(cancellationToken).ConfigureAwait(false);
            Exception error;
            try
            {
                await RunStreamAsync(client, cancellationToken).ConfigureAwait(false);
                error = new IOException("the server ended the control stream");
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.PermissionDenied or StatusCode.Unauthenticated)
            {
                throw new ControlChannelRefusedException("the server refused this probe: " + e.Status.Detail, e);
            }
            // InvalidOperationException: a write raced the end of the call; the next stream tells why.
            catch (Exception e) when (!cancellationToken.IsCancellationRequested
                                      && e is RpcException or IOException or HttpRequestException or TimeoutException or OperationCanceledException or InvalidOperationException)
            {
                error = e;
            }

            // A stream that got acks was a success: start the backoff over.
            if (Interlocked.Exchange(ref _lastAckTimestamp, 0) != 0)
                failures = 0;
            var delay = BackoffDelay(failures++, _options.InitialBackoff, _options.MaxBackoff, Random.Shared);
            _options.Disconnected?.Invoke(error, delay);
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Exponential backoff with equal jitter: half the capped delay plus a random part of the other half.</summary>
    internal static TimeSpan BackoffDelay(int attempt, TimeSpan initial, TimeSpan max, Random random)
    {
        var cap = Math.Min(max.Ticks, initial.Ticks * Math.Pow(2, Math.Min(attempt, 30)));
        return TimeSpan.FromTicks((long)(cap / 2 + random.NextDouble() * cap / 2));
    }

    private async Task RunStreamAsync(ControlClient client, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var call = client.Connect(cancellationToken: stop.Token);
        var outbox = Channel.CreateUnbounded<ProbeMessage>(new UnboundedChannelOptions { SingleReader = true });
        lock (_lock)
        {
            _lastSentSequence = 0;
            _lastRoundTrip = null;
        }

        Volatile.Write(ref _outbox, outbox);
        var reading = ReadAsync(call.ResponseStream, outbox.Writer, stop.Token);
        var writing = WriteAsync(call.RequestStream, outbox.Reader, stop.Token);
        var beating = HeartbeatAsync(outbox.Writer, stop.Token);
        try
        {
            // The reader sees the server's status; the others fail only when the stream is gone or the server went silent.
            var first = await Task.WhenAny(reading, writing, beating).ConfigureAwait(false);
            if (first != reading)
                await first.ConfigureAwait(false);
            await reading.ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _outbox, null);
            outbox.Writer.TryComplete();
            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(reading, writing, beating).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    private async Task ReadAsync(IAsyncStreamReader<ServerMessage> responses, ChannelWriter<ProbeMessage> outbox, CancellationToken cancellationToken)
    {
        while (await responses.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            var message = responses.Current;
            if (message.KindCase == ServerMessage.KindOneofCase.HeartbeatAck)
            {
                var ack = message.HeartbeatAck;
                var now = _time.GetTimestamp();
                lock (_lock)
                {
                    if (ack.Sequence == _lastSentSequence && _lastSentTimestamp != 0)
                        _lastRoundTrip = _time.GetElapsedTime(_lastSentTimestamp, now);
                    _clockSkew = ack.ClockSkew?.ToTimeSpan();
                }

                Interlocked.Exchange(ref _lastAckTimestamp, now);
            }
            else if (message.KindCase == ServerMessage.KindOneofCase.Command)
            {
                var command = message.Command;
                CommandResult? answered = null;
                bool repeat;
                lock (_lock)
                {
                    repeat = _seen.TryGetValue(command.Id, out answered);
                    if (!repeat)
                        Remember(command.Id, null);
                }

                if (!repeat)
                    _commands.Writer.TryWrite(command);
                else if (answered is not null)
                    outbox.TryWrite(new ProbeMessage { CommandResult = answered });
            }
        }
    }

    private async Task WriteAsync(IClientStreamWriter<ProbeMessage> requests, ChannelReader<ProbeMessage> outbox, CancellationToken cancellationToken)
    {
        await foreach (var message in outbox.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (message.Heartbeat is { } heartbeat)
            {
                // Stamped as late as possible: the clock for skew, the timestamp for the round trip.
                heartbeat.ProbeClock = Timestamp.FromDateTimeOffset(_time.GetUtcNow());
                lock (_lock)
                {
                    _lastSentSequence = heartbeat.Sequence;
                    _lastSentTimestamp = _time.GetTimestamp();
                }
            }

            await requests.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task HeartbeatAsync(ChannelWriter<ProbeMessage> outbox, CancellationToken cancellationToken)
    {
        ulong sequence = 0;
        var started = _time.GetTimestamp();
        while (true)
        {
            var interval = HeartbeatInterval;
            var lastAck = Interlocked.Read(ref _lastAckTimestamp);
            var silentFor = _time.GetElapsedTime(lastAck != 0 ? lastAck : started);
            if (silentFor > interval * _options.MissedAcksBeforeReconnect)
                throw new TimeoutException($"no heartbeat ack for {silentFor.TotalSeconds:0}s");

            var heartbeat = (await _snapshot(cancellationToken).ConfigureAwait(false)).Clone();
            heartbeat.Sequence = ++sequence;
            heartbeat.HeartbeatInterval = Duration.FromTimeSpan(interval);
            lock (_lock)
                heartbeat.RoundTrip = _lastRoundTrip is { } rtt ? Duration.FromTimeSpan(rtt) : null;
            outbox.TryWrite(new ProbeMessage { Heartbeat = heartbeat });
            await Task.Delay(interval, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private void Remember(string commandId, CommandResult? result)
    {
        if (!_seen.ContainsKey(commandId))
        {
            _seenOrder.Enqueue(commandId);
            while (_seenOrder.Count > RememberedCommands)
                _seen.Remove(_seenOrder.Dequeue());
        }

        _seen[commandId] = result;
    }

    public void Dispose() => _commands.Writer.TryComplete();
}

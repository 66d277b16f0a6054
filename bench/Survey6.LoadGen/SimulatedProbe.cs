using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using Survey6.Contracts.V1;
using Survey6.Probe.Control;
using Survey6.Probe.Join;
using ControlClient = Survey6.Contracts.V1.Control.ControlClient;

namespace Survey6.LoadGen;

/// <summary>Counters shared by every simulated probe.</summary>
internal sealed class LoadStats
{
    public LatencyRecorder Latency { get; } = new();
    public long Sent;
    public long Acked;
    public long StreamErrors;
    public long ConnectFailures;
    public long Commands;
    public ConcurrentDictionary<string, int> ErrorKinds { get; } = new(StringComparer.Ordinal);

    public void Error(Exception e)
    {
        var kind = e is RpcException rpc ? "rpc " + rpc.StatusCode : e.GetType().Name;
        ErrorKinds.AddOrUpdate(kind, 1, (_, n) => n + 1);
    }
}

/// <summary>
/// One probe: its own SocketsHttpHandler (so its own TLS connection) with its own client
/// certificate, one Control.Connect stream, a heartbeat at a fixed phase of the interval.
/// </summary>
internal sealed class SimulatedProbe : IDisposable
{
    private readonly ControlChannelOptions _identity;
    private readonly LoadStats _stats;
    private readonly SocketsHttpHandler _handler;
    private readonly GrpcChannel _channel;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    // Sequence → Stopwatch timestamp of the send, for heartbeats still waiting for their ack.
    private readonly ConcurrentDictionary<ulong, (long Sent, bool Measured)> _pending = new();
    private AsyncDuplexStreamingCall<ProbeMessage, ServerMessage>? _call;
    private ulong _sequence;
    private TaskCompletionSource _firstAck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _reader = Task.CompletedTask;

    public SimulatedProbe(ControlChannelOptions identity, LoadStats stats)
    {
        _identity = identity;
        _stats = stats;
        _handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(30),
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = PinnedCa.Callback(identity.Ca, _ => { }),
                ClientCertificates = new X509CertificateCollection { identity.ClientCertificate },
            },
        };
        _channel = GrpcChannel.ForAddress(identity.Server, new GrpcChannelOptions { HttpHandler = _handler, DisposeHttpClient = true });
    }

    public bool Connected => _call is not null && _firstAck.Task.IsCompletedSuccessfully;

    /// <summary>Opens the stream and sends the first heartbeat (as the probe does); done when it is acked.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        _sequence = 0;
        _pending.Clear();
        _firstAck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _call = new ControlClient(_channel).Connect(cancellationToken: cancellationToken);
        _reader = ReadAsync(_call, cancellationToken);
        await SendHeartbeatAsync(measured: false, cancellationToken);
        await _firstAck.Task.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
    }

    /// <summary>
    /// Sends a heartbeat every <paramref name="interval"/> starting at <paramref name="first"/>
    /// (Stopwatch timestamp) until <paramref name="end"/>; reconnects after a broken stream.
    /// </summary>
    public async Task RunAsync(long first, TimeSpan interval, long end, CancellationToken cancellationToken)
    {
        var next = first;
        var intervalTicks = (long)(interval.TotalSeconds * Stopwatch.Frequency);
        while (next < end && !cancellationToken.IsCancellationRequested)
        {
            var wait = next - Stopwatch.GetTimestamp();
            if (wait > 0)
                await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), cancellationToken);
            next += intervalTicks;
            try
            {
                if (!Connected || _reader.IsCompleted)
                {
                    Interlocked.Increment(ref _stats.StreamErrors);
                    await ConnectAsync(cancellationToken);
                }

                await SendHeartbeatAsync(measured: true, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is RpcException or IOException or HttpRequestException or TimeoutException or InvalidOperationException or OperationCanceledException)
            {
                Interlocked.Increment(ref _stats.StreamErrors);
                _stats.Error(e);
                _call?.Dispose();
                _call = null;
            }
        }
    }

    /// <summary>Heartbeats sent in the measured window that never got an ack.</summary>
    public int Unacked => _pending.Values.Count(p => p.Measured);

    public async Task CloseAsync()
    {
        if (_call is { } call)
        {
            try
            {
                await call.RequestStream.CompleteAsync();
                await _reader.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is RpcException or IOException or InvalidOperationException or TimeoutException or OperationCanceledException)
            {
            }
        }
    }

    public void Dispose()
    {
        _call?.Dispose();
        _channel.Dispose();
        _handler.Dispose();
        _writeLock.Dispose();
        _identity.ClientCertificate.Dispose();
        _identity.Ca.Dispose();
    }

    private async Task SendHeartbeatAsync(bool measured, CancellationToken cancellationToken)
    {
        var call = _call ?? throw new InvalidOperationException("not connected");
        await _writeLock.WaitAsync(cancellationToken);
        try
        {
            var sequence = ++_sequence;
            var heartbeat = Snapshot(sequence);
            _pending[sequence] = (Stopwatch.GetTimestamp(), measured);
            await call.RequestStream.WriteAsync(new ProbeMessage { Heartbeat = heartbeat }, cancellationToken);
            if (measured)
                Interlocked.Increment(ref _stats.Sent);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadAsync(AsyncDuplexStreamingCall<ProbeMessage, ServerMessage> call, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var message in call.ResponseStream.ReadAllAsync(cancellationToken))
            {
                var now = Stopwatch.GetTimestamp();
                switch (message.KindCase)
                {
                    case ServerMessage.KindOneofCase.HeartbeatAck:
                        if (_pending.TryRemove(message.HeartbeatAck.Sequence, out var sent))
                        {
                            if (sent.Measured)
                            {
                                _stats.Latency.Record(now - sent.Sent);
                                Interlocked.Increment(ref _stats.Acked);
                            }

                            _firstAck.TrySetResult();
                        }

                        break;
                    case ServerMessage.KindOneofCase.Command:
                        Interlocked.Increment(ref _stats.Commands);
                        await _writeLock.WaitAsync(cancellationToken);
                        try
                        {
                            var result = new CommandResult { CommandId = message.Command.Id, Ok = true, Message = "load generator" };
                            await call.RequestStream.WriteAsync(new ProbeMessage { CommandResult = result }, cancellationToken);
                        }
                        finally
                        {
                            _writeLock.Release();
                        }

                        break;
                }
            }
        }
        catch (Exception e) when (e is RpcException or IOException or InvalidOperationException or OperationCanceledException)
        {
            if (!cancellationToken.IsCancellationRequested)
            {
                _stats.Error(e);
                _firstAck.TrySetException(e);
            }
        }
    }

    private Heartbeat Snapshot(ulong sequence)
    {
        var heartbeat = new Heartbeat
        {
            State = ProbeState.Capturing,
            Capture = new CaptureCounters { Received = sequence * 100_000, KernelDropped = 0, QueueDropped = 0 },
            Spool = new SpoolStatus { Files = 2, Bytes = 64L << 20, OldestAge = Duration.FromTimeSpan(TimeSpan.FromMinutes(3)), FreeDiskBytes = 40UL << 30 },
            Upload = new UploadCounters { FilesUploaded = sequence / 6, BytesUploaded = sequence / 6 * (64UL << 20) },
            CpuPercent = 12.5,
            RssBytes = 80UL << 20,
            SoftwareVersion = HostFactsCollector.SoftwareVersion,
            ProbeClock = Timestamp.FromDateTime(DateTime.UtcNow),
            Sequence = sequence,
            HeartbeatInterval = Duration.FromTimeSpan(_identity.HeartbeatInterval),
        };
        heartbeat.Interfaces.Add(new InterfaceUtilisation { Name = "eth0", RxBytesPerSecond = 12_000_000, TxBytesPerSecond = 300_000, Utilisation = 0.1 });
        return heartbeat;
    }
}

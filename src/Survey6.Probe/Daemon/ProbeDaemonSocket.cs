using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Survey6.Probe.Diagnostics;

namespace Survey6.Probe.Daemon;

/// <summary>
/// The local control protocol on <c>STATE/probe.sock</c> (Unix stream socket, mode 0660): one JSON
/// object per line each way, one request per connection.
/// Requests: <c>{"command":"status"}</c>, <c>{"command":"suspend","reason":"..."}</c>,
/// <c>{"command":"resume"}</c>, <c>{"command":"rotate"}</c>.
/// Replies: <c>{"ok":true,"status":{...}}</c> or <c>{"ok":false,"error":"..."}</c>.
/// </summary>
public static class ProbeDaemonProtocol
{
    public const int MaxRequestBytes = 4096;

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static string Reply(ProbeStatus status) =>
        new JsonObject { ["ok"] = true, ["status"] = JsonSerializer.SerializeToNode(status, Json) }.ToJsonString() + "\n";

    public static string Error(string message) =>
        new JsonObject { ["ok"] = false, ["error"] = message }.ToJsonString() + "\n";
}

/// <summary>Serves <see cref="ProbeDaemonProtocol"/> for the daemon's lifetime.</summary>
public sealed class ProbeDaemonSocket(ProbeDaemon daemon, ProbeDaemonPaths paths, ILogger<ProbeDaemonSocket> logger) : BackgroundService
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private Socket? _listener;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var path = paths.SocketPath;
        // The daemon holds the state directory's lock, so a socket file here is a dead daemon's.
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            listener.Listen(16);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        ProbeLog.SocketListening(logger, path);
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await base.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _listener?.Dispose();
            File.Delete(paths.SocketPath);
        }
    }

    public override void Dispose()
    {
        _listener?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var listener = _listener!;
        while (!stoppingToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SocketException e)
            {
                ProbeLog.SocketRequestFailed(logger, e.Message);
                continue;
            }

            _ = ServeAsync(client, stoppingToken);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stoppingToken)
    {
        using (client)
        await using (var stream = new NetworkStream(client, ownsSocket: false))
        {
            string reply;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(RequestTimeout);
                var request = await ReadLineAsync(stream, timeout.Token).ConfigureAwait(false);
                timeout.CancelAfter(CommandTimeout);
                reply = await HandleAsync(request, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
            {
                reply = ProbeDaemonProtocol.Error("bad request: " + e.Message);
            }
            catch (OperationCanceledException)
            {
                reply = ProbeDaemonProtocol.Error("timed out");
            }
            catch (IOException e)
            {
                ProbeLog.SocketRequestFailed(logger, e.Message);
                reply = ProbeDaemonProtocol.Error(e.Message);
            }

            try
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes(reply), stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                ProbeLog.SocketRequestFailed(logger, e.Message);
            }
        }
    }

    private async Task<string> HandleAsync(string request, CancellationToken cancellationToken)
    {
        var node = JsonNode.Parse(request) as JsonObject ?? throw new FormatException("not a JSON object");
        var command = node["command"]?.GetValue<string>() ?? throw new FormatException("no command");
        switch (command)
        {
            case "status":
                break;
            case "suspend":
                await daemon.SuspendAsync(node["reason"]?.GetValue<string>() ?? "", cancellationToken).ConfigureAwait(false);
                break;
            case "resume":
                await daemon.ResumeAsync(cancellationToken).ConfigureAwait(false);
                break;
            case "rotate":
                await daemon.RotateAsync(cancellationToken).ConfigureAwait(false);
                break;
            default:
                return ProbeDaemonProtocol.Error($"unknown command '{command}' (status, suspend, resume, rotate)");
        }

        return ProbeDaemonProtocol.Reply(daemon.GetStatus());
    }

    private static async Task<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[ProbeDaemonProtocol.MaxRequestBytes];
        var used = 0;
        while (used < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(used), cancellationToken).ConfigureAwait(false);
            if (n == 0)
                break;
            used += n;
            var newline = Array.IndexOf(buffer, (byte)'\n', used - n, n);
            if (newline >= 0)
                return Encoding.UTF8.GetString(buffer, 0, newline);
        }

        if (used == buffer.Length)
            throw new FormatException($"request longer than {ProbeDaemonProtocol.MaxRequestBytes} bytes");
        return Encoding.UTF8.GetString(buffer, 0, used);
    }
}

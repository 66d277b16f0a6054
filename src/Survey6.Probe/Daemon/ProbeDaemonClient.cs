using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Survey6.Probe.Daemon;

/// <summary>A daemon's answer: <see cref="Raw"/> is the reply line as received (for <c>--json</c>).</summary>
public sealed record ProbeDaemonReply(bool Ok, string? Error, ProbeStatus? Status, string Raw);

/// <summary>The CLI side of <see cref="ProbeDaemonProtocol"/>.</summary>
public static class ProbeDaemonClient
{
    /// <summary>Sends one request; null when no daemon listens on the socket (not running, or a stale socket).</summary>
    /// <exception cref="IOException">A daemon is there but the exchange failed (permissions, timeout, a bad reply).</exception>
    public static async Task<ProbeDaemonReply?> SendAsync(string socketPath, string command, string? reason, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var request = new JsonObject { ["command"] = command };
        if (reason is not null)
            request["reason"] = reason;

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), deadline.Token).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported)
        {
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            throw new IOException($"not allowed to use {socketPath} (run as the probe's user or a member of its group)", e);
        }
        catch (SocketException) when (!File.Exists(socketPath))
        {
            return null;
        }

        try
        {
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToJsonString() + "\n"), deadline.Token).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var line = await reader.ReadLineAsync(deadline.Token).ConfigureAwait(false)
                ?? throw new IOException("the probe daemon closed the connection without answering");
            var reply = JsonNode.Parse(line) as JsonObject ?? throw new IOException("the probe daemon's reply is not a JSON object");
            var ok = reply["ok"]?.GetValue<bool>() ?? false;
            var status = reply["status"] is { } s ? s.Deserialize<ProbeStatus>(ProbeDaemonProtocol.Json) : null;
            return new ProbeDaemonReply(ok, reply["error"]?.GetValue<string>(), status, line);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"the probe daemon did not answer within {timeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is JsonException or SocketException)
        {
            throw new IOException("talking to the probe daemon failed: " + e.Message, e);
        }
    }
}

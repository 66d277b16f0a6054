using Grpc.Core;
using Survey6.Contracts.V1;
using Survey6.Probe.Daemon;
using Survey6.Probe.Spool;
using Survey6.Probe.Upload;

namespace Survey6.Probe.Join;

/// <summary>What <c>survey6 probe leave</c> did.</summary>
/// <param name="ProbeId">The identity that was removed.</param>
/// <param name="ServerConfirmed">False when the server no longer accepted the certificate (revoked, or the probe already left).</param>
/// <param name="RemovedFiles">Identity files deleted from the state directory.</param>
/// <param name="SpoolFiles">Captures not uploaded, kept in the spool (closed files and files left open by a crash).</param>
/// <param name="SpoolBytes">Their size.</param>
public sealed record LeaveResult(string ProbeId, bool ServerConfirmed, IReadOnlyList<string> RemovedFiles, int SpoolFiles, long SpoolBytes);

/// <summary>
/// <c>survey6 probe leave</c>: tells the server (Leave, authenticated by the probe's certificate), then removes the
/// identity from the state directory. The spool is never touched: captures not uploaded stay for the operator.
/// </summary>
public static class ProbeLeaveClient
{
    /// <exception cref="ProbeJoinException">Nothing was removed: no identity, a daemon still runs, or the server could not be told.</exception>
    public static async Task<LeaveResult> LeaveAsync(string stateDirectory, string spoolDirectory, string reason, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var state = new ProbeStateDirectory(stateDirectory);
        var probeId = state.IsJoined ? state.ReadProbeId() : null;
        if (probeId is null)
            throw new ProbeJoinException($"{state.Root} holds no joined probe; nothing to leave");

        // A running daemon would go on using the identity being removed.
        Survey6.Packets.Files.OwnerLock daemonLock;
        try
        {
            daemonLock = new ProbeDaemonPaths(state.Root).AcquireLock();
        }
        catch (Survey6.Packets.Files.OwnerLockException e)
        {
            throw new ProbeJoinException(e.Message);
        }

        using (daemonLock)
        {
            var confirmed = true;
            using (var connection = ProbeConnection.Open(state))
            {
                var client = new Contracts.V1.Enrollment.EnrollmentClient(connection.Channel);
                try
                {
                    await client.LeaveAsync(new LeaveRequest { Reason = reason }, deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken).ConfigureAwait(false);
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.PermissionDenied or StatusCode.Unauthenticated)
                {
                    // The server already refuses this certificate: as far as it is concerned the probe is gone.
                    confirmed = false;
                }
                catch (RpcException e)
                {
                    throw new ProbeJoinException($"cannot tell the server at {connection.Server} ({e.StatusCode}: {e.Status.Detail}); the identity is kept, try again", e);
                }
            }

            var removed = state.RemoveIdentity();
            var (files, bytes) = CountSpool(spoolDirectory);
            return new LeaveResult(probeId, confirmed, removed, files, bytes);
        }
    }

    private static (int Files, long Bytes) CountSpool(string spoolDirectory)
    {
        if (!Directory.Exists(spoolDirectory))
            return (0, 0);
        var files = Directory.EnumerateFiles(spoolDirectory)
            .Where(f => f.EndsWith(SpoolFileName.CaptureExtension, StringComparison.Ordinal) || f.EndsWith(SpoolFileName.PartialSuffix, StringComparison.Ordinal))
            .Select(f => new FileInfo(f))
            .ToList();
        return (files.Count, files.Sum(f => f.Length));
    }
}

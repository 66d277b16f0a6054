using Survey6.Probe.Capture;
using Survey6.Probe.Spool;

namespace Survey6.Probe.Daemon;

/// <summary>The daemon as the control stream sees it: a status to report, commands to execute.</summary>
public interface IProbeAgent
{
    ProbeStatus GetStatus();

    /// <summary>SUSPEND: stop capturing and release the interfaces (uploads go on); persisted across restarts.</summary>
    Task SuspendAsync(string reason, CancellationToken cancellationToken);

    /// <summary>RESUME: clear the flag and capture again.</summary>
    Task ResumeAsync(CancellationToken cancellationToken);

    /// <summary>Close the open spool file now, so that everything captured so far can be uploaded.</summary>
    Task RotateAsync(CancellationToken cancellationToken);

    /// <summary>UPLOAD_NOW: passed to the uploader, if there is one.</summary>
    void UploadNow();

    /// <summary>
    /// A policy changed what is captured: the running capture (if any) is stopped, its queue drained into the open
    /// file, which closes (<c>close_reason: policy</c>), and capture starts again with <paramref name="settings"/>.
    /// </summary>
    /// <exception cref="CaptureStartException">The new settings failed to start; the previous ones run again.</exception>
    Task ApplyCaptureSettingsAsync(Capture.CaptureSettings settings, CancellationToken cancellationToken);
}

/// <summary>Something else the daemon runs for its lifetime when registered (e.g. certificate renewal).</summary>
public interface IProbeTask
{
    string Name { get; }

    Task RunAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The probe end of the control stream (heartbeats, commands). Runs for the daemon's lifetime:
/// connects, sends a heartbeat built from <see cref="IProbeAgent.GetStatus"/> every policy interval,
/// executes commands through <paramref name="agent"/>, and reconnects with backoff when the stream breaks.
/// </summary>
public interface IControlLink
{
    Task RunAsync(IProbeAgent agent, CancellationToken cancellationToken);
}

/// <summary>
/// Moves closed spool files to the server. Runs for the daemon's lifetime: takes files from
/// <see cref="SpoolDirectory.ClosedFiles"/> (and <see cref="SpoolDirectory.FileClosed"/>), sends each
/// with <see cref="SpoolFile.ReadManifestJson"/>, and calls <see cref="SpoolDirectory.Complete"/> only
/// after the server acknowledged it. Never deletes a file otherwise.
/// </summary>
public interface IUploader
{
    Task RunAsync(SpoolDirectory spool, CancellationToken cancellationToken);

    /// <summary>Upload what is spooled now, outside the upload window (UPLOAD_NOW).</summary>
    void UploadNow();

    UploaderSnapshot Status { get; }
}

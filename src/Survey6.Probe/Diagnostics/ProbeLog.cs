using Microsoft.Extensions.Logging;

namespace Survey6.Probe.Diagnostics;

/// <summary>Every log message of the probe daemon, in one place so that event ids stay unique.</summary>
internal static partial class ProbeLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Capture run {RunId} started on {Interfaces}; filter '{Filter}', snaplen {SnapLength}")]
    public static partial void CaptureStarted(ILogger logger, long runId, string interfaces, string filter, int snapLength);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information,
        Message = "Capture run {RunId} stopped ({Reason}): {Captured} frames captured, {Written} written; dropped: kernel {KernelDropped}, interface {InterfaceDropped}, queue {QueueDropped}, disk {DiskDropped}")]
    public static partial void CaptureStopped(ILogger logger, long runId, Capture.CloseReason reason, long captured, long written, long kernelDropped, long interfaceDropped, long queueDropped, long diskDropped);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Capture could not start: {Reason}; retrying in {RetryInterval}")]
    public static partial void CaptureStartFailed(ILogger logger, string reason, TimeSpan retryInterval);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "Capture still cannot start: {Count} attempts failed since {Since:u} ({Unlogged} not logged): {Reason}")]
    public static partial void CaptureStillFailing(ILogger logger, long count, DateTimeOffset since, long unlogged, string reason);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Capture started after {Count} failed attempts")]
    public static partial void CaptureRecovered(ILogger logger, long count);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "Capture on {Interface} failed: {Reason}")]
    public static partial void CaptureFailed(ILogger logger, string @interface, string reason);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Stopping capture on {Interface} failed: {Reason}")]
    public static partial void CaptureStopFailed(ILogger logger, string @interface, string reason);

    [LoggerMessage(EventId = 113, Level = LogLevel.Debug, Message = "Read {Frames} frames still in the kernel's buffer of {Interface} before closing it")]
    public static partial void CaptureDrained(ILogger logger, string @interface, int frames);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "libpcap ignored {Setting} on {Interface}: {Reason}")]
    public static partial void CaptureSettingIgnored(ILogger logger, string @interface, string setting, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "pcap_stats on {Interface} failed: {Reason}")]
    public static partial void StatisticsFailed(ILogger logger, string @interface, string reason);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "The capture leaves out the probe's own traffic with its C&C {Host} port {Port}: {Addresses}")]
    public static partial void OwnTrafficLeftOut(ILogger logger, string host, int port, string addresses);

    [LoggerMessage(EventId = 108, Level = LogLevel.Warning, Message = "Cannot resolve the C&C host {Host} ({Reason}); the {Known} addresses known stay left out of the capture")]
    public static partial void OwnTrafficResolveFailed(ILogger logger, string host, string reason, int known);

    [LoggerMessage(EventId = 109, Level = LogLevel.Warning, Message = "The C&C host {Host} resolves to {Count} addresses; only the first {Max} are left out of the capture")]
    public static partial void OwnTrafficTooManyAddresses(ILogger logger, string host, int count, int max);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Probe:Capture:ExcludeOwnTraffic is off: the probe's uploads and heartbeats to {Server} are captured, and uploaded again")]
    public static partial void OwnTrafficCaptured(ILogger logger, Uri server);

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Spool file {File} closed ({Reason}): {Frames} frames, {Bytes} bytes")]
    public static partial void FileClosed(ILogger logger, string file, string reason, long frames, long bytes);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Repaired {File} left by a crash: cut at offset {Offset} ({Discarded} bytes of a torn block discarded), {Frames} frames kept")]
    public static partial void FileRepaired(ILogger logger, string file, long offset, long discarded, long frames);

    [LoggerMessage(EventId = 202, Level = LogLevel.Error, Message = "{File} has no readable header and cannot be repaired ({Reason}); moved to {Destination}")]
    public static partial void FileUnrepairable(ILogger logger, string file, string reason, string destination);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "Disk guard ({Policy}) evicted {File}: {Bytes} bytes, {Frames} frames; spool {SpoolBytes} bytes, {FreeBytes} bytes free")]
    public static partial void FileEvicted(ILogger logger, string policy, string file, long bytes, long frames, long spoolBytes, long freeBytes);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Disk guard paused writing: spool {SpoolBytes} of {MaxSpoolBytes} bytes, {FreeBytes} bytes free (minimum {MinFreeBytes}); frames are counted as disk drops until space returns")]
    public static partial void DiskPaused(ILogger logger, long spoolBytes, long maxSpoolBytes, long freeBytes, long minFreeBytes);

    [LoggerMessage(EventId = 205, Level = LogLevel.Information, Message = "Disk guard resumed writing after {Dropped} frames were discarded")]
    public static partial void DiskResumed(ILogger logger, long dropped);

    [LoggerMessage(EventId = 206, Level = LogLevel.Error, Message = "Writing spool file {File} failed: {Reason}; the file is closed as far as it is intact")]
    public static partial void WriteFailed(ILogger logger, string file, string reason);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Manifest for {File} was missing and has been rebuilt from the file")]
    public static partial void ManifestRebuilt(ILogger logger, string file);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Spool {Directory}: {Files} closed files, {Bytes} bytes; {Repaired} repaired")]
    public static partial void SpoolOpened(ILogger logger, string directory, int files, long bytes, int repaired);

    [LoggerMessage(EventId = 209, Level = LogLevel.Warning, Message = "Disk guard: nothing left to evict, frames are discarded (spool {SpoolBytes} bytes, {FreeBytes} bytes free)")]
    public static partial void DiskFull(ILogger logger, long spoolBytes, long freeBytes);

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Probe {ProbeId} suspended: {Reason}")]
    public static partial void Suspended(ILogger logger, string probeId, string reason);

    [LoggerMessage(EventId = 301, Level = LogLevel.Information, Message = "Probe {ProbeId} resumed")]
    public static partial void Resumed(ILogger logger, string probeId);

    [LoggerMessage(EventId = 302, Level = LogLevel.Information, Message = "Probe {ProbeId} starts suspended (flag in {Path})")]
    public static partial void StartsSuspended(ILogger logger, string probeId, string path);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "{StateDirectory} holds no joined probe; files are labelled with probe id '{ProbeId}'")]
    public static partial void NotJoined(ILogger logger, string stateDirectory, string probeId);

    [LoggerMessage(EventId = 307, Level = LogLevel.Warning, Message = "{StateDirectory} holds no joined identity (probe.json and certificate): capture only, no uploads and no control stream")]
    public static partial void CaptureOnly(ILogger logger, string stateDirectory);

    [LoggerMessage(EventId = 304, Level = LogLevel.Information, Message = "Control socket listening at {Path}")]
    public static partial void SocketListening(ILogger logger, string path);

    [LoggerMessage(EventId = 305, Level = LogLevel.Warning, Message = "Control socket request failed: {Reason}")]
    public static partial void SocketRequestFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 306, Level = LogLevel.Error, Message = "{Component} stopped with an error: {Reason}")]
    public static partial void ComponentFailed(ILogger logger, string component, string reason);

    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Fell back from policy {FromVersion} to policy {ToVersion}: {Reason}")]
    public static partial void PolicyFellBack(ILogger logger, long fromVersion, long toVersion, string reason);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Policy {Version} in force: capture {Capture}; proven healthy {Proven}")]
    public static partial void PolicyInForce(ILogger logger, long version, string capture, bool proven);

    [LoggerMessage(EventId = 502, Level = LogLevel.Information, Message = "Policy {Version} ran healthy for {HealthyAfter}: it is the last known-good policy now")]
    public static partial void PolicyProven(ILogger logger, long version, TimeSpan healthyAfter);

    [LoggerMessage(EventId = 503, Level = LogLevel.Information, Message = "Policy {Version} applied: {Message}")]
    public static partial void PolicyApplied(ILogger logger, long version, string message);

    [LoggerMessage(EventId = 504, Level = LogLevel.Warning, Message = "Policy {Version} not (fully) applied: {Message}")]
    public static partial void PolicyRejected(ILogger logger, long version, string message);

    [LoggerMessage(EventId = 510, Level = LogLevel.Information, Message = "Certificate renewed: serial {Serial}, valid until {NotAfter:u}; new connections use it")]
    public static partial void CertificateRenewed(ILogger logger, string serial, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 511, Level = LogLevel.Warning, Message = "Certificate renewal failed, retrying in {Delay}: {Reason}")]
    public static partial void CertificateRenewalFailed(ILogger logger, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 512, Level = LogLevel.Information, Message = "Certificate (valid until {NotAfter:u}) is renewed at {Due:u}")]
    public static partial void CertificateRenewalDue(ILogger logger, DateTimeOffset notAfter, DateTimeOffset due);
}

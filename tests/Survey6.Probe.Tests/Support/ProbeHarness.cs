using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Survey6.Probe.Capture;
using Survey6.Probe.Daemon;
using Survey6.Probe.Spool;

namespace Survey6.Probe.Tests.Support;

/// <summary>The probe daemon's host, in this process, built the way <c>survey6 probe run</c> builds it.</summary>
internal sealed class ProbeHarness : IAsyncDisposable
{
    private readonly IHost _host;
    private bool _stopped;

    private ProbeHarness(IHost host, string stateDirectory)
    {
        _host = host;
        StateDirectory = stateDirectory;
    }

    public string StateDirectory { get; }

    public ProbeDaemon Daemon => _host.Services.GetRequiredService<ProbeDaemon>();

    public SpoolDirectory Spool => _host.Services.GetRequiredService<SpoolDirectory>();

    public SpoolWriter Writer => _host.Services.GetRequiredService<SpoolWriter>();

    public CaptureEngine Engine => _host.Services.GetRequiredService<CaptureEngine>();

    public Policies.PolicyController Policies => _host.Services.GetRequiredService<Policies.PolicyController>();

    /// <summary>
    /// Settings every test wants (quiet logs, quick statistics); <paramref name="settings"/> override them. Frames are
    /// delivered as the product ships, in blocks every read timeout (not in immediate mode, which hid a stop that lost
    /// the last block).
    /// </summary>
    public static Dictionary<string, string?> Settings(string stateDirectory, string? captureInterface, params (string Key, string Value)[] settings)
    {
        var all = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Logging:LogLevel:Default"] = "Error",
            ["Probe:StateDirectory"] = stateDirectory,
            ["Probe:Id"] = "p-test",
            ["Probe:Labels:site"] = "lab",
            ["Probe:Labels:role"] = "test",
            ["Probe:Location"] = "52.52,13.405,DE,Berlin",
            ["Probe:Capture:StatisticsInterval"] = "00:00:00.200",
            ["Probe:Spool:GuardInterval"] = "00:00:00.100",
        };
        if (captureInterface is not null)
            all["Probe:Capture:Interfaces:0"] = captureInterface;
        foreach (var (key, value) in settings)
            all[key] = value;
        return all;
    }

    /// <summary>Starts the daemon and waits until capture runs (or, suspended, until it settled).</summary>
    public static async Task<ProbeHarness> StartAsync(Dictionary<string, string?> settings, Action<IServiceProvider>? beforeStart = null)
    {
        var builder = ProbeDaemonHosting.CreateBuilder(null, settings);
        var host = builder.Build();
        var harness = new ProbeHarness(host, settings["Probe:StateDirectory"]!);
        beforeStart?.Invoke(host.Services);
        await host.StartAsync();
        await harness.Daemon.Started.WaitAsync(TimeSpan.FromSeconds(20));
        return harness;
    }

    public void RequireCapturing()
    {
        var status = Daemon.GetStatus();
        Assert.True(status.State == ProbeStatus.Capturing, $"the probe is {status.State}: {status.StateReason}");
    }

    /// <summary>
    /// Polls until <paramref name="condition"/> holds. The deadline is for a stuck test, not a slow machine: it is
    /// never under <see cref="MinimumWait"/>, so a test written with a tight figure still holds on a busy 2-core host.
    /// </summary>
    public static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        timeout = timeout < MinimumWait ? MinimumWait : timeout;
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out after {timeout} waiting for {what}");
            await Task.Delay(20);
        }
    }

    /// <summary>The shortest deadline <see cref="WaitUntilAsync"/> gives.</summary>
    public static readonly TimeSpan MinimumWait = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Waits until libpcap has delivered at least <paramref name="atLeast"/> frames (the traffic a test sent: on a busy
    /// machine the last frames reach the capture after the sender returns) and every one has reached a file or was
    /// counted as dropped.
    /// </summary>
    public Task WaitForQueueDrainedAsync(long atLeast = 0) => WaitUntilAsync(() =>
    {
        var c = Daemon.GetStatus().Capture;
        return c.Captured >= atLeast && c.Captured == c.Written + c.QueueDropped + c.DiskDropped;
    }, TimeSpan.FromSeconds(10), $"{atLeast} frames captured and the queue drained");

    /// <summary>Stops the host: capture stops, the open file is closed with its final counters.</summary>
    public async Task StopAsync()
    {
        if (_stopped)
            return;
        _stopped = true;
        await _host.StopAsync(TimeSpan.FromSeconds(30));
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _host.Dispose();
    }
}

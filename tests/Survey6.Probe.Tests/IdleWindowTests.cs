using Microsoft.Extensions.Time.Testing;
using Survey6.Probe.Uplink;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>The upload gate on a fake clock, one sample a second as the uploader feeds it.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class IdleWindowTests
{
    private const long Idle = 100_000;

    private readonly FakeTimeProvider _time = new(DateTimeOffset.UnixEpoch);

    [Fact]
    public void A_quiet_link_opens_the_gate_after_the_quiet_period()
    {
        var window = new IdleWindow(Idle, TimeSpan.FromSeconds(5), TimeSpan.FromHours(1), _time);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true)); // nothing sampled yet
        Tick(window, 5, total: 1_000, own: 0);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true)); // quiet for 4 s of the 5
        Tick(window, 1, total: 1_000, own: 0);
        Assert.Equal(UploadGate.Go, window.Decide(pending: true));
    }

    [Fact]
    public void A_busy_second_starts_the_quiet_period_over()
    {
        var window = new IdleWindow(Idle, TimeSpan.FromSeconds(5), TimeSpan.FromHours(1), _time);
        Tick(window, 4, total: 1_000, own: 0);
        Tick(window, 1, total: 5_000_000, own: 0);
        Tick(window, 5, total: 1_000, own: 0);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));
        Assert.Equal(1_000, window.LastOthersBytesPerSecond);
        Tick(window, 1, total: 1_000, own: 0);
        Assert.Equal(UploadGate.Go, window.Decide(pending: true));

        // Busy again: the next file waits.
        Tick(window, 1, total: Idle, own: 0);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));
    }

    [Fact]
    public void The_uploads_own_bytes_do_not_make_the_link_busy()
    {
        var window = new IdleWindow(Idle, TimeSpan.FromSeconds(3), TimeSpan.FromHours(1), _time);
        Tick(window, 4, total: 5_000_000 + 2_000, own: 5_000_000);
        Assert.Equal(UploadGate.Go, window.Decide(pending: true));
        Assert.Equal(2_000, window.LastOthersBytesPerSecond);

        // Others' traffic beside the upload still counts.
        Tick(window, 1, total: 5_000_000 + Idle, own: 5_000_000);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));
    }

    [Fact]
    public void Max_deferral_forces_the_upload_and_an_empty_spool_resets_it()
    {
        var window = new IdleWindow(Idle, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(1), _time);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true)); // waiting starts here
        Tick(window, 59, total: 10_000_000, own: 0);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));
        Tick(window, 1, total: 10_000_000, own: 0);
        Assert.Equal(UploadGate.Forced, window.Decide(pending: true));

        // Spool drained: the next file waits a whole deferral again.
        Assert.Equal(UploadGate.Wait, window.Decide(pending: false));
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));
        Tick(window, 30, total: 10_000_000, own: 0);
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));
    }

    [Fact]
    public void Unreadable_counters_are_not_quiet_and_zero_threshold_never_waits()
    {
        var window = new IdleWindow(Idle, TimeSpan.FromSeconds(2), TimeSpan.FromHours(1), _time);
        Tick(window, 3, total: 0, own: 0);
        window.RecordUnknown();
        Assert.Equal(UploadGate.Wait, window.Decide(pending: true));

        var ungated = new IdleWindow(0, TimeSpan.FromSeconds(30), TimeSpan.FromHours(1), _time);
        Assert.Equal(UploadGate.Go, ungated.Decide(pending: true));
    }

    private void Tick(IdleWindow window, int seconds, long total, long own)
    {
        for (int i = 0; i < seconds; i++)
        {
            // A sample arrives at the end of the second it covers.
            _time.Advance(TimeSpan.FromSeconds(1));
            window.Record(total, own);
        }
    }
}

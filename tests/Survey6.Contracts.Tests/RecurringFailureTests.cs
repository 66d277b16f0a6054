using Microsoft.Extensions.Time.Testing;
using Survey6.Contracts.Diagnostics;

namespace Survey6.Contracts.Tests;

/// <summary>A failure that repeats every few seconds is logged once, then with its count, not once per attempt.</summary>
public sealed class RecurringFailureTests
{
    [Fact]
    public void The_first_failure_is_logged_the_repeats_are_counted_and_logged_again_with_the_count_after_the_reminder()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));
        var failures = new RecurringFailure(time, TimeSpan.FromMinutes(10));

        var first = failures.Report("Unavailable/");
        Assert.True(first.Log);
        Assert.Equal(1, first.Total);

        // An attempt every 10 s for 9 minutes: 54 repeats, none logged.
        for (var i = 0; i < 54; i++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            Assert.False(failures.Report("Unavailable/").Log);
        }

        time.Advance(TimeSpan.FromMinutes(1));
        var reminder = failures.Report("Unavailable/");
        Assert.True(reminder.Log);
        Assert.Equal(56, reminder.Total);
        Assert.Equal(54, reminder.Unlogged);
        Assert.Equal(first.Since, reminder.Since);

        // Another condition is logged at once; clearing says how many the condition had.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(failures.Report("ResourceExhausted/disk-full").Log);
        Assert.False(failures.Report("ResourceExhausted/disk-full").Log);
        Assert.Equal(2, failures.Clear());
        Assert.Equal(0, failures.Clear());
        Assert.True(failures.Report("ResourceExhausted/disk-full").Log);
    }
}

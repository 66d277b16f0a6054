namespace Survey6.Server.Control;

/// <summary>
/// Runs work on a fixed grid of the <see cref="TimeProvider"/>'s clock: now, then at the first grid
/// point after the clock time each run began. A clock that jumps (a suspended VM, a test clock
/// advanced by days) gives one run, not one per missed tick as a <see cref="PeriodicTimer"/> on a
/// fake clock does; and a run that saw an old time is followed at once by another if the clock has
/// crossed a grid point meanwhile, so no tick is lost either.
/// </summary>
internal static class ClockTicker
{
    public static Task RunAsync(TimeProvider time, TimeSpan interval, Action work, CancellationToken cancellationToken) =>
        RunAsync(time, interval, _ =>
        {
            work();
            return ValueTask.CompletedTask;
        }, cancellationToken);

    public static async Task RunAsync(TimeProvider time, TimeSpan interval, Func<CancellationToken, ValueTask> work, CancellationToken cancellationToken)
    {
        var origin = time.GetUtcNow();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var began = time.GetUtcNow();
            await work(cancellationToken).ConfigureAwait(false);
            var next = origin + interval * (Math.Floor((began - origin) / interval) + 1);
            var wait = next - time.GetUtcNow();
            if (wait > TimeSpan.Zero)
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
        }
    }
}

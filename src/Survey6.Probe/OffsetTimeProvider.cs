namespace Survey6.Probe;

/// <summary>
/// The system clock shifted by a fixed offset (<see cref="ProbeOptions.ClockOffset"/>): only the wall clock moves;
/// timers and elapsed time stay the system's, so nothing waits longer or shorter than configured.
/// </summary>
internal sealed class OffsetTimeProvider(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + offset;
}

namespace Survey6.Testing;

/// <summary>
/// What a hot path allocates, measured so that the runtime's own one-off work does not count.
/// </summary>
/// <remarks>
/// Tiered compilation may swap optimised code into a running loop and allocate once, on the test's thread, as it does
/// (7,216 bytes in one pass of one clean-clone run; 2,656 bytes in 3,000 anonymiser calls of another). So a measurement
/// is up to <c>passes</c> passes of the same work, and the answer is the fewest bytes any pass allocated. An allocation
/// per call shows in every pass; the runtime's one-off work does not repeat.
/// </remarks>
public static class Allocations
{
    /// <summary>
    /// Bytes allocated on this thread by the pass that allocated least, stopping at the first that allocated none.
    /// The caller warms the code up first; <paramref name="pass"/> gets the pass's number, from 0.
    /// </summary>
    public static long Fewest(Action<int> pass, int passes = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(passes, 1);
        long fewest = long.MaxValue;
        for (int i = 0; i < passes && fewest != 0; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            pass(i);
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return fewest;
    }

    /// <inheritdoc cref="Fewest(Action{int}, int)"/>
    public static long Fewest(Action pass, int passes = 3) => Fewest(_ => pass(), passes);
}

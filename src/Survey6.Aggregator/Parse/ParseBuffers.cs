using Survey6.Aggregator.Aggregate;
using Survey6.Aggregator.Connections;

namespace Survey6.Aggregator.Parse;

/// <summary>
/// The buffers a parse keeps from one capture to the next (the packets and fragments writers' columns, the open
/// connections' table): a few hundred MB after a large capture. Kept while captures come; released when the parse
/// stage ends, so that the stages after it in the same process (the aggregate stage's DuckDB gets half of
/// <c>Aggregator:MemoryLimit</c>) have the memory instead.
/// </summary>
public static class ParseBuffers
{
    public static void Release()
    {
        PacketParquetWriter.ReleaseIdle();
        ConnectionPartialWriter.ReleaseIdle();
        ConnectionTracker.ReleaseIdle();
        // Compacting, and giving the freed memory back to the system: a plain collection keeps it for later allocations.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }
}

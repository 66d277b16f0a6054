namespace Survey6.Probe.Capture;

/// <summary>
/// Counters of one interface in one capture run. The capture thread counts frames it saw and queue
/// drops, the statistics sampler the pcap_stats values (64-bit, although libpcap's wrap at 2^32),
/// the spool writer what it wrote and what the disk guard discarded. Any thread may read a snapshot.
/// </summary>
public sealed class InterfaceCounters
{
    internal long CapturedField;
    internal long CapturedBytesField;
    internal long QueueDroppedField;
    internal long PcapReceivedField;
    internal long KernelDroppedField;
    internal long InterfaceDroppedField;
    internal long WrittenField;
    internal long DiskDroppedField;

    public CounterSnapshot Snapshot() => new(
        Volatile.Read(ref CapturedField),
        Volatile.Read(ref CapturedBytesField),
        Volatile.Read(ref QueueDroppedField),
        Volatile.Read(ref PcapReceivedField),
        Volatile.Read(ref KernelDroppedField),
        Volatile.Read(ref InterfaceDroppedField),
        Volatile.Read(ref WrittenField),
        Volatile.Read(ref DiskDroppedField));
}

/// <summary>
/// Frame counts by stage. <see cref="Captured"/>: frames libpcap handed to the probe;
/// <see cref="PcapReceived"/>, <see cref="KernelDropped"/>, <see cref="InterfaceDropped"/>: pcap_stats
/// ps_recv, ps_drop, ps_ifdrop; <see cref="QueueDropped"/>: the queue to the spool writer was full;
/// <see cref="Written"/>: frames in spool files; <see cref="DiskDropped"/>: discarded by the disk guard.
/// Captured = Written + QueueDropped + DiskDropped once the queue is drained.
/// </summary>
public readonly record struct CounterSnapshot(
    long Captured,
    long CapturedBytes,
    long QueueDropped,
    long PcapReceived,
    long KernelDropped,
    long InterfaceDropped,
    long Written,
    long DiskDropped)
{
    public static CounterSnapshot operator +(CounterSnapshot a, CounterSnapshot b) => new(
        a.Captured + b.Captured,
        a.CapturedBytes + b.CapturedBytes,
        a.QueueDropped + b.QueueDropped,
        a.PcapReceived + b.PcapReceived,
        a.KernelDropped + b.KernelDropped,
        a.InterfaceDropped + b.InterfaceDropped,
        a.Written + b.Written,
        a.DiskDropped + b.DiskDropped);

    public static CounterSnapshot operator -(CounterSnapshot a, CounterSnapshot b) => new(
        a.Captured - b.Captured,
        a.CapturedBytes - b.CapturedBytes,
        a.QueueDropped - b.QueueDropped,
        a.PcapReceived - b.PcapReceived,
        a.KernelDropped - b.KernelDropped,
        a.InterfaceDropped - b.InterfaceDropped,
        a.Written - b.Written,
        a.DiskDropped - b.DiskDropped);

    public CounterSnapshot Add(CounterSnapshot other) => this + other;

    public CounterSnapshot Subtract(CounterSnapshot other) => this - other;

    /// <summary>True when nothing at all was counted.</summary>
    public bool IsZero => this == default;
}

namespace Survey6.Aggregator.Connections;

/// <summary>Zeek's TCP endpoint states (<c>TCP_ENDPOINT_*</c>), which <c>conn_state</c> is computed from.</summary>
public enum TcpEndpointState : byte
{
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// <summary>
/// One side of a connection: its packet and byte counts and, for TCP, Zeek's endpoint bookkeeping. Sequence numbers are
/// kept unwrapped (64-bit, each new one read as the 32-bit value nearest the last), so sizes over 4 GiB stay right.
/// </summary>
internal struct Endpoint
{
    // Zeek ignores sequence and acknowledgement jumps this large (TOO_LARGE_SEQ_DELTA).
    internal const long TooLargeSeqDelta = 1 << 20;

    public TcpEndpointState State;
    public TcpEndpointState PrevState;
    public bool SeqKnown;
    public long Start;
    public long LastSeq;
    public long AckSeq;
    public long Contiguous;
    public long Ahead;
    public long HistLastSyn;
    public long HistLastFin;
    public long HistLastRst;
    public uint FinCount;
    public uint RetransmitCount;
    public uint RetransmitThreshold;
    public uint ZeroWindowCount;
    public uint ZeroWindowThreshold;
    public uint GapCount;
    public uint GapThreshold;
    public bool DidClose;
    public long Packets;
    public long IpBytes;
    public long DataBytes;
    public long MissedBytes;

    public Endpoint()
    {
        RetransmitThreshold = 1;
        ZeroWindowThreshold = 1;
        GapThreshold = 1;
    }

    public void SetState(TcpEndpointState state)
    {
        if (state != State)
        {
            PrevState = State;
            State = state;
        }
    }

    /// <summary>The 64-bit position of a 32-bit sequence number: the one nearest <paramref name="reference"/>.</summary>
    public static long Unwrap(uint value, long reference) => reference + unchecked((int)(value - (uint)reference));

    public void InitSequence(long start, long last)
    {
        Start = start;
        AckSeq = start;
        LastSeq = last;
        Contiguous = start + 1;
        Ahead = 0;
        SeqKnown = true;
    }

    /// <summary>
    /// Notes the sequence space [<paramref name="from"/>, <paramref name="to"/>) as seen: it extends the contiguous
    /// run, or counts as seen ahead of a hole (assumed to lie at the top, just below the highest sequence number).
    /// </summary>
    public void Saw(long from, long to)
    {
        if (from <= Contiguous)
        {
            Contiguous = Math.Max(Contiguous, to);
            if (Ahead > 0 && Contiguous >= LastSeq - Ahead)
            {
                Contiguous = Math.Max(Contiguous, LastSeq);
                Ahead = 0;
            }
        }
        else
        {
            Ahead += to - from;
        }
    }

    /// <summary>
    /// The peer acknowledged up to <paramref name="acked"/>: returns the octets below it that were never seen (a
    /// content gap), and takes them as settled.
    /// </summary>
    public long Acknowledged(long acked)
    {
        long beyond = acked - Contiguous;
        if (beyond <= 0 || beyond > TooLargeSeqDelta)
        {
            return 0;
        }

        long aheadBelow = Math.Clamp(acked - (LastSeq - Ahead), 0, Ahead);
        Contiguous = acked;
        Ahead -= aheadBelow;
        return Math.Max(0, beyond - aheadBelow);
    }

    /// <summary>Zeek's <c>TCP_Endpoint::Size</c>: the sequence space sent or acknowledged, less the SYN and FIN octets.</summary>
    public readonly long Size(in Endpoint peer)
    {
        if (!SeqKnown)
        {
            return 0;
        }

        // A half-open connection discovered and aborted: its numbers say nothing about data.
        if (PrevState == TcpEndpointState.SynSent && State == TcpEndpointState.Reset && peer.State == TcpEndpointState.Inactive
            && AckSeq != Start && AckSeq != Start + 1)
        {
            return 0;
        }

        long size = Math.Max(LastSeq, AckSeq) - Start;
        if (size <= 0)
        {
            return 0;
        }

        size--;
        if (FinCount > 0 && size != 0)
        {
            size--;
        }

        return size;
    }
}

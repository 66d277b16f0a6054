using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Connections;

/// <summary>
/// Everything known about one connection so far, updated one packet at a time by <see cref="Apply"/> with Zeek's rules
/// (its TCP endpoint state machine, history letters and sizes; UDP and ICMP as flows). A fragment carries a copy, so the
/// stitcher can go on from exactly where a capture left the connection.
/// </summary>
public sealed class ConnectionState
{
    private const ushort Fin = 0x01;
    private const ushort Syn = 0x02;
    private const ushort Rst = 0x04;
    private const ushort Ack = 0x10;

    // Zeek's per-direction "seen once" history bits; the responder's are the same shifted by 16.
    private const uint HistSyn = 1 << 0;
    private const uint HistFin = 1 << 1;
    private const uint HistRst = 1 << 2;
    private const uint HistFinRst = 1 << 3;
    private const uint HistData = 1 << 4;
    private const uint HistAck = 1 << 5;
    private const uint HistMulti = 1 << 6;

    private Endpoint _a;
    private Endpoint _b;
    private char[] _history = new char[8];
    private int _historyLength;
    private uint _historySeen;

    internal ConnectionState(ConnectionKey key, long firstTimestampNs, bool origIsA)
    {
        Key = key;
        FirstTimestampNs = firstTimestampNs;
        LastTimestampNs = firstTimestampNs;
        LastPacketNs = firstTimestampNs;
        OrigIsA = origIsA;
        _a = new Endpoint();
        _b = new Endpoint();
    }

    public ConnectionKey Key { get; }

    /// <summary>The first packet's time: Zeek's <c>ts</c>.</summary>
    public long FirstTimestampNs { get; }

    /// <summary>Zeek's last time: not moved by TCP packets once both sides have closed, so the final ACK is not counted.</summary>
    public long LastTimestampNs { get; private set; }

    /// <summary>The last packet's time, whatever it was: what the idle timeout is measured from.</summary>
    public long LastPacketNs { get; private set; }

    /// <summary>Endpoint A (the key's lower end) is the originator; false once Zeek's SYN/SYN-ACK reversal flipped them.</summary>
    public bool OrigIsA { get; private set; }

    public bool Dns { get; private set; }

    /// <summary>When the first SYN was seen (Zeek's attempt timer starts there); <see cref="long.MinValue"/> if never.</summary>
    internal long AttemptStartNs { get; private set; } = long.MinValue;

    /// <summary>When the close became complete (a RST, or a FIN whose peer had closed or never spoke), else MinValue.</summary>
    internal long CompletedNs { get; private set; } = long.MinValue;

    internal ref Endpoint Orig => ref OrigIsA ? ref _a : ref _b;

    internal ref Endpoint Resp => ref OrigIsA ? ref _b : ref _a;

    public string History => new(_history, 0, _historyLength);

    public long OrigPackets => Orig.Packets;

    public long RespPackets => Resp.Packets;

    /// <summary>Starts the state for the first packet of a connection: its sender is the originator.</summary>
    internal static ConnectionState Start(ConnectionKey key, in ConnectionEvent first) => new(key, first.TimestampNs, first.FromA);

    /// <summary>Whether <paramref name="e"/> belongs to a new connection on the same key rather than to this one.</summary>
    internal bool EndsBefore(in ConnectionEvent e, ConnectionOptions options)
    {
        long t = e.TimestampNs;
        if (t - LastPacketNs > options.IdleTimeoutNs(Key.Protocol))
        {
            return true;
        }

        if (Key.Protocol != ConnectionKey.Tcp)
        {
            return false;
        }

        ref var orig = ref Orig;
        ref var resp = ref Resp;
        bool attempt = orig.State is TcpEndpointState.SynSent or TcpEndpointState.SynAckSent && resp.State == TcpEndpointState.Inactive;
        if (attempt && AttemptStartNs != long.MinValue && t > AttemptStartNs + (options.TcpAttemptDelay.Ticks * 100))
        {
            return true;
        }

        if (CompletedNs != long.MinValue)
        {
            // Zeek removes a closed connection tcp_close_delay after its last activity; a new SYN reuses the tuple at once.
            bool pureSyn = (e.TcpFlags & (Syn | Ack | Fin | Rst)) == Syn;
            return pureSyn || t > LastTimestampNs + (options.TcpCloseDelay.Ticks * 100);
        }

        return false;
    }

    /// <summary>Counts <paramref name="e"/> and moves the state on, by the connection's protocol's rules.</summary>
    internal void Apply(in ConnectionEvent e)
    {
        ref var sender = ref e.FromA ? ref _a : ref _b;
        bool isOrig = e.FromA == OrigIsA;
        sender.Packets++;
        sender.IpBytes += e.IpBytes;
        LastPacketNs = e.TimestampNs;
        Dns |= e.Dns;
        switch (Key.Protocol)
        {
            case ConnectionKey.Tcp:
                ApplyTcp(e, ref sender, ref e.FromA ? ref _b : ref _a, isOrig);
                break;
            case ConnectionKey.Udp:
                sender.DataBytes += e.DataLength;
                LastTimestampNs = e.TimestampNs;
                CheckHistory(HistData, 'D', isOrig);
                break;
            default:
                sender.DataBytes += e.DataLength;
                LastTimestampNs = e.TimestampNs;
                break;
        }
    }

    private void ApplyTcp(in ConnectionEvent e, ref Endpoint ep, ref Endpoint peer, bool isOrig)
    {
        ushort flags = e.TcpFlags;
        bool syn = (flags & Syn) != 0;
        bool fin = (flags & Fin) != 0;
        bool rst = (flags & Rst) != 0;
        bool ack = (flags & Ack) != 0;
        long len = e.DataLength;
        long segLen = len + (syn ? 1 : 0) + (fin ? 1 : 0) - (rst ? len : 0);

        long baseSeq = ep.SeqKnown ? Endpoint.Unwrap(e.Sequence, ep.LastSeq) : e.Sequence;
        InitEndpoint(ref ep, syn, baseSeq, baseSeq + segLen);
        long relSeq = baseSeq - ep.Start;

        UpdateHistory(ref ep, isOrig, syn, fin, rst, ack, relSeq, len);

        // Zero windows are news unless they come with or after a RST, or after the peer's FIN.
        if (e.Window == 0 && !rst && peer.State != TcpEndpointState.Closed && ep.State != TcpEndpointState.Reset)
        {
            Scaled(isOrig ? 'W' : 'w', ref ep.ZeroWindowCount, ref ep.ZeroWindowThreshold);
        }

        if (!_a.DidClose || !_b.DidClose)
        {
            LastTimestampNs = e.TimestampNs;
        }

        if (fin)
        {
            ep.FinCount++;
        }

        long ackPosition = 0;
        bool peerWasInactive = peer.State == TcpEndpointState.Inactive;
        if (ack)
        {
            if (peerWasInactive)
            {
                // No packet from the peer yet: number its space as if its SYN had been seen.
                ackPosition = peer.SeqKnown ? Endpoint.Unwrap(e.Acknowledgement, peer.LastSeq) : e.Acknowledgement;
                peer.InitSequence(ackPosition - 1, ackPosition - 1);
            }
            else
            {
                ackPosition = Endpoint.Unwrap(e.Acknowledgement, peer.AckSeq);
                long deltaAck = ackPosition - peer.AckSeq;
                if (ackPosition >= peer.Start && !rst && !(e.Acknowledgement == 0 && deltaAck > Endpoint.TooLargeSeqDelta) && deltaAck > 0)
                {
                    peer.AckSeq = ackPosition;
                }
            }
        }

        // What the monitor saw of this side's sequence space (a RST's data is not part of the stream).
        if (!rst && segLen > 0 && ep.State != TcpEndpointState.Reset)
        {
            ep.Saw(baseSeq, baseSeq + segLen);
        }

        UpdateLastSeq(ref ep, isOrig, syn, fin, rst, baseSeq + segLen, len);
        UpdateStateMachine(e.TimestampNs, ref ep, ref peer, isOrig, syn, fin, rst, ack, baseSeq, len);

        // A content gap: the peer acknowledges sequence space of ours we never saw (a RST's or FIN's ack is not trusted).
        if (ack && !rst && !fin && !peerWasInactive && peer.State != TcpEndpointState.Inactive)
        {
            long missing = peer.Acknowledged(ackPosition);
            if (missing > 0)
            {
                peer.MissedBytes += missing;
                Scaled(isOrig ? 'g' : 'G', ref peer.GapCount, ref peer.GapThreshold);
            }
        }
    }

    private static void InitEndpoint(ref Endpoint ep, bool syn, long baseSeq, long end)
    {
        switch (ep.State)
        {
            case TcpEndpointState.Inactive:
                if (syn)
                {
                    ep.InitSequence(baseSeq, end);
                }
                else
                {
                    // A partial connection: number as though a SYN came just before, and do not count this as a retransmission.
                    ep.InitSequence(baseSeq - 1, baseSeq);
                }

                break;
            case TcpEndpointState.SynSent or TcpEndpointState.SynAckSent:
                if (syn && baseSeq != ep.Start)
                {
                    ep.InitSequence(baseSeq, end);
                }

                break;
            case TcpEndpointState.Established or TcpEndpointState.Partial:
                if (syn)
                {
                    ep.InitSequence(baseSeq, end);
                }

                break;
            case TcpEndpointState.Reset:
                if (syn && ep.PrevState == TcpEndpointState.Inactive)
                {
                    ep.InitSequence(baseSeq, end);
                }

                break;
        }
    }

    private void UpdateHistory(ref Endpoint ep, bool isOrig, bool syn, bool fin, bool rst, bool ack, long relSeq, long len)
    {
        int bits = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0);
        if (bits > 1)
        {
            if (fin && rst)
            {
                CheckHistory(HistFinRst, 'I', isOrig);
            }
            else
            {
                CheckHistory(HistMulti, 'Q', isOrig);
            }
        }
        else if (bits == 1)
        {
            if (syn)
            {
                char code = ack ? 'H' : 'S';
                if (CheckHistory(HistSyn, code, isOrig) && relSeq != ep.HistLastSyn)
                {
                    AddHistory(code, isOrig);
                }

                ep.HistLastSyn = relSeq;
            }

            if (fin)
            {
                // A FIN's sequence number is the one after its data.
                if (CheckHistory(HistFin, 'F', isOrig) && relSeq + len != ep.HistLastFin)
                {
                    AddHistory('F', isOrig);
                }

                ep.HistLastFin = relSeq + len;
            }

            if (rst)
            {
                if (CheckHistory(HistRst, 'R', isOrig) && relSeq != ep.HistLastRst)
                {
                    AddHistory('R', isOrig);
                }

                ep.HistLastRst = relSeq;
            }
        }
        else if (len > 0)
        {
            CheckHistory(HistData, 'D', isOrig);
        }
        else if (ack)
        {
            CheckHistory(HistAck, 'A', isOrig);
        }
    }

    private void UpdateLastSeq(ref Endpoint ep, bool isOrig, bool syn, bool fin, bool rst, long end, long len)
    {
        long deltaLast = end - ep.LastSeq;
        if ((syn || rst) && Math.Abs(deltaLast) > Endpoint.TooLargeSeqDelta)
        {
            return;
        }

        if (fin && ep.LastSeq == ep.Start + 1)
        {
            ep.LastSeq = end;
        }
        else if (ep.State == TcpEndpointState.Reset)
        {
            // Nothing after a RST is trusted.
        }
        else if (deltaLast > 0)
        {
            ep.LastSeq = end;
        }
        else if (len > 0)
        {
            Scaled(isOrig ? 'T' : 't', ref ep.RetransmitCount, ref ep.RetransmitThreshold);
        }
    }

    private void UpdateStateMachine(long t, ref Endpoint ep, ref Endpoint peer, bool isOrig, bool syn, bool fin, bool rst, bool ack, long baseSeq, long len)
    {
        bool close = false;
        switch (ep.State)
        {
            case TcpEndpointState.Inactive:
                close = UpdateInactive(t, ref ep, ref peer, isOrig, syn, fin, rst, ack, baseSeq, len);
                break;
            case TcpEndpointState.SynSent or TcpEndpointState.SynAckSent:
                close = CloseOnFinOrRst(ref ep, fin, rst);
                break;
            case TcpEndpointState.Established or TcpEndpointState.Partial:
                if (syn && ep.State == TcpEndpointState.Partial && peer.State == TcpEndpointState.Inactive && !ack)
                {
                    ep.SetState(TcpEndpointState.SynSent);
                }

                if (fin && !rst)
                {
                    ep.SetState(TcpEndpointState.Closed);
                    if (peer.State == TcpEndpointState.Reset && peer.PrevState == TcpEndpointState.Closed)
                    {
                        // The peer's FIN then RST was a normal close after all.
                        peer.SetState(TcpEndpointState.Closed);
                    }

                    close = true;
                }

                if (rst)
                {
                    ep.SetState(TcpEndpointState.Reset);
                    close = true;
                }

                break;
            case TcpEndpointState.Closed:
                if (rst && peer.State != TcpEndpointState.Closed)
                {
                    ep.SetState(TcpEndpointState.Reset);
                    close = !ep.DidClose;
                }

                break;
        }

        if (close && !ep.DidClose)
        {
            ep.DidClose = true;
            bool complete = ep.State == TcpEndpointState.Reset || peer.DidClose || peer.State == TcpEndpointState.Inactive;
            if (complete && CompletedNs == long.MinValue)
            {
                CompletedNs = t;
            }
        }
    }

    private bool UpdateInactive(long t, ref Endpoint ep, ref Endpoint peer, bool isOrig, bool syn, bool fin, bool rst, bool ack, long baseSeq, long len)
    {
        bool close = false;
        if (syn)
        {
            if (isOrig)
            {
                ep.SetState(ack ? TcpEndpointState.SynAckSent : TcpEndpointState.SynSent);
                if (AttemptStartNs == long.MinValue)
                {
                    AttemptStartNs = t;
                }
            }
            else
            {
                if (!ack && peer.State == TcpEndpointState.SynAckSent && baseSeq == ep.Start)
                {
                    // The SYN the originator's SYN-ACK answered, seen late: the roles were the other way round.
                    OrigIsA = !OrigIsA;
                    AddHistory('^', true);
                    peer.SetState(TcpEndpointState.Established);
                }

                if (peer.State == TcpEndpointState.SynSent)
                {
                    peer.SetState(TcpEndpointState.Established);
                }

                ep.SetState(TcpEndpointState.Established);
            }
        }

        close |= CloseOnFinOrRst(ref ep, fin, rst);
        if (ep.State == TcpEndpointState.Inactive)
        {
            if (!isOrig && len == 0 && Orig.State == TcpEndpointState.SynSent)
            {
                // Some stacks ACK a SYN before answering it: not a partial connection.
            }
            else if (ack && peer.State == TcpEndpointState.Established)
            {
                ep.SetState(TcpEndpointState.Established);
            }
            else
            {
                ep.SetState(TcpEndpointState.Partial);
            }
        }

        return close;
    }

    /// <summary>Before the handshake completes, a FIN closes the side and a RST resets it (a RST wins).</summary>
    private static bool CloseOnFinOrRst(ref Endpoint ep, bool fin, bool rst)
    {
        if (fin)
        {
            ep.SetState(TcpEndpointState.Closed);
        }

        if (rst)
        {
            ep.SetState(TcpEndpointState.Reset);
        }

        return fin || rst;
    }

    /// <summary>Zeek's <c>CheckHistory</c>: adds the letter the first time; true when it had been seen before.</summary>
    private bool CheckHistory(uint mask, char code, bool isOrig)
    {
        uint bit = isOrig ? mask : mask << 16;
        if ((_historySeen & bit) == 0)
        {
            _historySeen |= bit;
            AddHistory(code, isOrig);
            return false;
        }

        return true;
    }

    /// <summary>Zeek's <c>ScaledHistoryEntry</c>: the letter at the 1st, 10th, 100th … occurrence.</summary>
    private void Scaled(char code, ref uint counter, ref uint threshold)
    {
        if (++counter == threshold)
        {
            AddHistory(code, true);
            uint next = threshold * 10;
            if (next <= threshold)
            {
                counter = 0;
            }
            else
            {
                threshold = next;
            }
        }
    }

    private void AddHistory(char code, bool upper)
    {
        if (_historyLength == _history.Length)
        {
            Array.Resize(ref _history, _history.Length * 2);
        }

        _history[_historyLength++] = upper ? code : char.ToLowerInvariant(code);
    }

    /// <summary>Zeek's <c>conn_state</c> from the endpoint states and, for TCP, sizes and history.</summary>
    public string ConnState
    {
        get
        {
            ref var orig = ref Orig;
            ref var resp = ref Resp;
            switch (Key.Protocol)
            {
                case ConnectionKey.Tcp:
                    return TcpConnState(orig, resp);
                case ConnectionKey.Udp:
                    bool origActive = orig.Packets > 0;
                    bool respActive = resp.Packets > 0;
                    return origActive ? (respActive ? "SF" : "S0") : (respActive ? "SHR" : "OTH");
                default:
                    return "OTH";
            }
        }
    }

    private string TcpConnState(in Endpoint orig, in Endpoint resp)
    {
        var os = orig.State;
        var rs = resp.State;
        bool origInactive = os is TcpEndpointState.Inactive or TcpEndpointState.Partial;
        bool respInactive = rs is TcpEndpointState.Inactive or TcpEndpointState.Partial;
        if (rs == TcpEndpointState.Reset)
        {
            if (os is TcpEndpointState.SynSent or TcpEndpointState.SynAckSent
                || (os == TcpEndpointState.Reset && orig.Size(resp) == 0 && resp.Size(orig) == 0))
            {
                return "REJ";
            }

            return origInactive ? "RSTRH" : "RSTR";
        }

        if (os == TcpEndpointState.Reset)
        {
            if (respInactive)
            {
                return IsSynThenReset() ? "RSTOS0" : "OTH";
            }

            return "RSTO";
        }

        if (rs == TcpEndpointState.Closed && os == TcpEndpointState.Closed)
        {
            return "SF";
        }

        if (os == TcpEndpointState.Closed)
        {
            return respInactive ? "SH" : "S2";
        }

        if (rs == TcpEndpointState.Closed)
        {
            return origInactive ? "SHR" : "S3";
        }

        if (os == TcpEndpointState.SynSent && rs == TcpEndpointState.Inactive)
        {
            return "S0";
        }

        return os == TcpEndpointState.Established && rs == TcpEndpointState.Established ? "S1" : "OTH";
    }

    /// <summary>Zeek's <c>/^\^?S[^HAFGIQ]*R.*/</c>: a SYN, then an originator's RST with no answer or close in between.</summary>
    private bool IsSynThenReset()
    {
        int i = 0;
        if (i < _historyLength && _history[i] == '^')
        {
            i++;
        }

        if (i >= _historyLength || _history[i] != 'S')
        {
            return false;
        }

        for (i++; i < _historyLength; i++)
        {
            char c = _history[i];
            if (c == 'R')
            {
                return true;
            }

            if (c is 'H' or 'A' or 'F' or 'G' or 'I' or 'Q')
            {
                return false;
            }
        }

        return false;
    }

    /// <summary>Payload octets of the originator (TCP: by sequence numbers, as Zeek) and of the responder.</summary>
    public long OrigBytes => Key.Protocol == ConnectionKey.Tcp ? Orig.Size(Resp) : Orig.DataBytes;

    public long RespBytes => Key.Protocol == ConnectionKey.Tcp ? Resp.Size(Orig) : Resp.DataBytes;

    public long OrigIpBytes => Orig.IpBytes;

    public long RespIpBytes => Resp.IpBytes;

    public long MissedBytes => _a.MissedBytes + _b.MissedBytes;

    internal ConnectionState Clone()
    {
        var copy = (ConnectionState)MemberwiseClone();
        copy._history = (char[])_history.Clone();
        return copy;
    }

    /// <summary>The originator's address (the key's end that <see cref="OrigIsA"/> names).</summary>
    public Ipv6Address OrigAddress => OrigIsA ? Key.AddressA : Key.AddressB;

    public Ipv6Address RespAddress => OrigIsA ? Key.AddressB : Key.AddressA;

    public ushort OrigPort => OrigIsA ? Key.PortA : Key.PortB;

    public ushort RespPort => OrigIsA ? Key.PortB : Key.PortA;

    /// <summary>Last time less first; null when zero, as Zeek leaves it (and the byte counts) unset then.</summary>
    public long? DurationNs => LastTimestampNs > FirstTimestampNs ? LastTimestampNs - FirstTimestampNs : null;

    /// <summary>The history letters without making a string.</summary>
    internal ReadOnlySpan<char> HistoryChars => _history.AsSpan(0, _historyLength);

    internal uint HistorySeen => _historySeen;

    internal ref readonly Endpoint A => ref _a;

    internal ref readonly Endpoint B => ref _b;

    /// <summary>A state exactly as stored (<see cref="Aggregate.ConnectionFragmentFile"/>): the inverse of the accessors above.</summary>
    internal static ConnectionState Restore(
        ConnectionKey key, long firstNs, long lastNs, long lastPacketNs, bool origIsA, bool dns, long attemptStartNs, long completedNs,
        uint historySeen, ReadOnlySpan<char> history, in Endpoint a, in Endpoint b)
    {
        var state = new ConnectionState(key, firstNs, origIsA)
        {
            LastTimestampNs = lastNs,
            LastPacketNs = lastPacketNs,
            Dns = dns,
            AttemptStartNs = attemptStartNs,
            CompletedNs = completedNs,
        };
        state._historySeen = historySeen;
        state._history = new char[Math.Max(8, history.Length)];
        history.CopyTo(state._history);
        state._historyLength = history.Length;
        state._a = a;
        state._b = b;
        return state;
    }
}

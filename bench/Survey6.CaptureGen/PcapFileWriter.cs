using System.Buffers;
using System.Buffers.Binary;

namespace Survey6.CaptureGen;

/// <summary>
/// Streams classic pcap (little-endian, microsecond, Ethernet) through one pooled buffer. Records past
/// <see cref="Limit"/> are dropped, so a run with a smaller limit is a byte-exact prefix of a larger one.
/// </summary>
internal sealed class PcapFileWriter : IDisposable
{
    private const int BufferSize = 4 << 20;
    private const int MaxRecord = 16 + Frame.Capacity;

    // 2025-01-01T00:00:00Z: a fixed start keeps output identical between runs.
    private const long EpochSeconds = 1_735_689_600;

    private readonly FileStream _stream;
    private readonly byte[] _buffer;
    private int _used;

    public PcapFileWriter(string path, long limit)
    {
        Limit = limit;
        _stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0);
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        var h = _buffer.AsSpan(0, 24);
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0xA1B2C3D4);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], 262_144);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        _used = 24;
        FileBytes = 24;
    }

    public long Limit { get; }

    public long Packets { get; private set; }

    public long FileBytes { get; private set; }

    public long WireBytes { get; private set; }

    public bool Full => Packets >= Limit;

    /// <summary>Appends one record holding the first <paramref name="capLen"/> bytes of <paramref name="frame"/>.</summary>
    public bool Write(ReadOnlySpan<byte> frame, int capLen, long micros)
    {
        if (Packets >= Limit)
        {
            return false;
        }

        if (_used + MaxRecord > BufferSize)
        {
            Flush();
        }

        var r = _buffer.AsSpan(_used);
        BinaryPrimitives.WriteUInt32LittleEndian(r, (uint)(EpochSeconds + (micros / 1_000_000)));
        BinaryPrimitives.WriteUInt32LittleEndian(r[4..], (uint)(micros % 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(r[8..], (uint)capLen);
        BinaryPrimitives.WriteUInt32LittleEndian(r[12..], (uint)frame.Length);
        frame[..capLen].CopyTo(r[16..]);
        _used += 16 + capLen;
        FileBytes += 16 + capLen;
        WireBytes += frame.Length;
        Packets++;
        return true;
    }

    private void Flush()
    {
        _stream.Write(_buffer, 0, _used);
        _used = 0;
    }

    public void Dispose()
    {
        Flush();
        _stream.Dispose();
        ArrayPool<byte>.Shared.Return(_buffer);
    }
}

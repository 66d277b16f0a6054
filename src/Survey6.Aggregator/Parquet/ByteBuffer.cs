using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Survey6.Aggregator.Parquet;

/// <summary>A growable byte buffer reused for every page; appends are bounds-checked once per call.</summary>
internal sealed class ByteBuffer(int capacity = 1 << 16)
{
    private byte[] _bytes = new byte[capacity];

    public int Length { get; private set; }

    public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, Length);

    public void Clear() => Length = 0;

    /// <summary>Room for <paramref name="count"/> more bytes; advance with <see cref="Advance"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Reserve(int count)
    {
        if (_bytes.Length - Length < count)
            Grow(count);
        return _bytes.AsSpan(Length, count);
    }

    public void Advance(int count) => Length += count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Byte(byte value)
    {
        if (Length == _bytes.Length)
            Grow(1);
        _bytes[Length++] = value;
    }

    public void Bytes(ReadOnlySpan<byte> value)
    {
        value.CopyTo(Reserve(value.Length));
        Length += value.Length;
    }

    public void Int32(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(Reserve(4), value);
        Length += 4;
    }

    /// <summary>Overwrites 4 bytes written earlier (a length prefix known only afterwards).</summary>
    public void PatchInt32(int at, int value) => BinaryPrimitives.WriteInt32LittleEndian(_bytes.AsSpan(at, 4), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void VarUInt(ulong value)
    {
        var span = Reserve(10);
        int n = 0;
        while (value >= 0x80)
        {
            span[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[n++] = (byte)value;
        Length += n;
    }

    private void Grow(int count) => Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, Length + count));
}

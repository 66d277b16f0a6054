using System.Buffers;
using System.Buffers.Text;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Text;

/// <summary>
/// Buffered UTF-8 text output for millions of rows: formats numbers and addresses straight into a pooled
/// byte buffer and writes it to the stream in large chunks.
/// </summary>
public sealed class Utf8LineWriter : IDisposable
{
    private const int BufferSize = 1 << 16;
    private const int MaxItemLength = 4096;
    private static ReadOnlySpan<byte> HexDigits => "0123456789abcdef"u8;

    private readonly Stream _stream;
    private byte[] _buffer;
    private int _position;

    public Utf8LineWriter(Stream stream)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    }

    public void Write(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > _buffer.Length - _position)
        {
            Flush();
            if (utf8.Length > _buffer.Length)
            {
                _stream.Write(utf8);
                return;
            }
        }

        utf8.CopyTo(_buffer.AsSpan(_position));
        _position += utf8.Length;
    }

    public void Write(byte b)
    {
        Ensure(1);
        _buffer[_position++] = b;
    }

    public void Write(ReadOnlySpan<char> text)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(text.Length);
        if (max > MaxItemLength)
        {
            Write(System.Text.Encoding.UTF8.GetBytes(text.ToString()));
            return;
        }

        Ensure(max);
        _position += System.Text.Encoding.UTF8.GetBytes(text, _buffer.AsSpan(_position));
    }

    public void Tab() => Write((byte)'\t');

    public void NewLine() => Write((byte)'\n');

    public void WriteDecimal(ulong value)
    {
        Ensure(20);
        Utf8Formatter.TryFormat(value, _buffer.AsSpan(_position), out int written);
        _position += written;
    }

    public void WriteDecimal(long value)
    {
        Ensure(21);
        Utf8Formatter.TryFormat(value, _buffer.AsSpan(_position), out int written);
        _position += written;
    }

    /// <summary>Writes <c>0x</c> and exactly <paramref name="digits"/> lower-case hex digits, as tshark prints hex fields.</summary>
    public void WriteHex(uint value, int digits)
    {
        Ensure(2 + digits);
        var span = _buffer.AsSpan(_position);
        span[0] = (byte)'0';
        span[1] = (byte)'x';
        for (int i = digits - 1; i >= 0; i--)
        {
            span[2 + i] = HexDigits[(int)(value & 0xF)];
            value >>= 4;
        }

        _position += 2 + digits;
    }

    /// <summary>Seconds since the epoch with nine decimals (tshark's <c>frame.time_epoch</c>).</summary>
    public void WriteEpochNanoseconds(long nanoseconds)
    {
        ulong magnitude = (ulong)nanoseconds;
        if (nanoseconds < 0)
        {
            Write((byte)'-');
            magnitude = (ulong)(-(nanoseconds + 1)) + 1; // long.MinValue has no positive twin
        }

        ulong seconds = magnitude / 1_000_000_000UL;
        ulong fraction = magnitude - (seconds * 1_000_000_000UL);
        WriteDecimal(seconds);
        Ensure(10);
        _buffer[_position++] = (byte)'.';
        Utf8Formatter.TryFormat(fraction, _buffer.AsSpan(_position), out int written, new StandardFormat('D', 9));
        _position += written;
    }

    public void WriteIpv6(Ipv6Address address)
    {
        Ensure(Ipv6Address.MaxTextLength);
        _position += address.FormatUtf8(_buffer.AsSpan(_position));
    }

    public void WriteIpv4(uint address)
    {
        WriteDecimal(address >> 24);
        Write((byte)'.');
        WriteDecimal((address >> 16) & 0xFF);
        Write((byte)'.');
        WriteDecimal((address >> 8) & 0xFF);
        Write((byte)'.');
        WriteDecimal(address & 0xFF);
    }

    public void Flush()
    {
        if (_position > 0)
        {
            _stream.Write(_buffer, 0, _position);
            _position = 0;
        }
    }

    public void Dispose()
    {
        Flush();
        _stream.Flush();
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    private void Ensure(int count)
    {
        if (_buffer.Length - _position < count)
        {
            Flush();
        }
    }
}

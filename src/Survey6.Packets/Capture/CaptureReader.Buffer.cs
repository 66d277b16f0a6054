using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Survey6.Packets.Capture;

// Opening, the shared read buffer and disposal.
public sealed partial class CaptureReader : IDisposable
{
    /// <summary>Initial buffer size; grown only when a single record is larger.</summary>
    internal const int DefaultBufferSize = 1 << 20;

    /// <summary>
    /// Largest record or block accepted (256 MiB). Anything bigger is treated as damage, so a corrupt length
    /// field cannot make the reader buffer an absurd amount of data.
    /// </summary>
    internal const int MaxRecordLength = 256 << 20;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;

    // _buffer[_start.._end) holds unread bytes; _buffer[0] is at file offset _bufferOffset.
    private byte[] _buffer;
    private int _start;
    private int _end;
    private long _bufferOffset;
    private bool _endOfStream;

    // Set once reading is over (clean end or damage); TryRead then keeps returning false.
    private bool _finished;
    private bool _disposed;
    private bool _bigEndian;

    private CaptureReader(Stream stream, bool leaveOpen, int bufferSize)
    {
        _stream = stream;
        _leaveOpen = leaveOpen;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    /// <summary>Opens a capture file for sequential reading.</summary>
    /// <remarks>Damaged or foreign content does not throw: it is reported in <see cref="Error"/>. I/O errors do throw.</remarks>
    public static CaptureReader Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        // bufferSize 0 turns off FileStream's own buffer: the reader reads in large chunks itself, a second copy is waste.
        // FileShare.ReadWrite lets us read a capture that is still being written (its last record then shows as cut short).
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0, FileOptions.SequentialScan);
        return Open(stream, leaveOpen: false);
    }

    /// <summary>Reads a capture from a stream, which need not be seekable (it is read strictly front to back).</summary>
    /// <param name="stream">The capture bytes.</param>
    /// <param name="leaveOpen">When false, disposing the reader disposes the stream.</param>
    public static CaptureReader Open(Stream stream, bool leaveOpen = false) => Open(stream, leaveOpen, DefaultBufferSize);

    /// <summary>As <see cref="Open(Stream, bool)"/> with a chosen initial buffer size (tests use tiny ones to exercise refills and growth).</summary>
    internal static CaptureReader Open(Stream stream, bool leaveOpen, int bufferSize)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 16);
        var reader = new CaptureReader(stream, leaveOpen, bufferSize);
        try
        {
            reader.ReadFileHeader();
        }
        catch
        {
            reader.Dispose();
            throw;
        }
        return reader;
    }

    /// <summary>Why reading stopped before the end of the data, or null (so far no damage).</summary>
    public CaptureError? Error { get; private set; }

    /// <summary>Byte offset in the file of the next unread byte.</summary>
    public long Position => _bufferOffset + _start;

    /// <summary>Returns the buffer to the pool and closes the stream unless it was opened with leaveOpen.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _finished = true;
        var buffer = _buffer;
        _buffer = [];
        _start = _end = 0;
        ArrayPool<byte>.Shared.Return(buffer);
        if (!_leaveOpen)
            _stream.Dispose();
    }

    private int Available => _end - _start;

    private void ReadFileHeader()
    {
        if (!Ensure(4))
        {
            Fail(0, Available == 0
                ? "not a pcap or pcapng file (the file is empty)"
                : $"not a pcap or pcapng file (only {Available} bytes)");
            return;
        }

        // Read as big-endian so the message shows the bytes in file order.
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(Unread(4));
        switch (magic)
        {
            case PcapMagicMicroseconds:
                ReadPcapHeader(bigEndian: true, nanoseconds: false);
                break;
            case PcapMagicMicrosecondsSwapped:
                ReadPcapHeader(bigEndian: false, nanoseconds: false);
                break;
            case PcapMagicNanoseconds:
                ReadPcapHeader(bigEndian: true, nanoseconds: true);
                break;
            case PcapMagicNanosecondsSwapped:
                ReadPcapHeader(bigEndian: false, nanoseconds: true);
                break;
            case PcapngFormat.BlockType.SectionHeader:
                Format = CaptureFileFormat.Pcapng;
                // Read the SHB and the metadata blocks behind it so interfaces are known right after Open.
                ReadPcapngBlocks(out _, metadataOnly: true);
                break;
            default:
                Fail(0, $"not a pcap or pcapng file (magic 0x{magic:x8})");
                break;
        }
    }

    /// <summary>Makes at least <paramref name="count"/> unread bytes available; false when the stream ends first.</summary>
    private bool Ensure(int count)
    {
        if (_end - _start >= count)
            return true;
        return Fill(count);
    }

    private bool Fill(int count)
    {
        if (_endOfStream)
            return false;
        if (_buffer.Length - _start < count)
            Compact();
        while (_end - _start < count)
        {
            if (_end == _buffer.Length)
            {
                if (_start > 0)
                    Compact();
                else
                    Grow(count);
            }
            int read = _stream.Read(_buffer, _end, _buffer.Length - _end);
            if (read <= 0)
            {
                _endOfStream = true;
                return false;
            }
            _end += read;
        }
        return true;
    }

    // Moves the unread tail to the front of the buffer.
    private void Compact()
    {
        int unread = _end - _start;
        if (_start == 0)
            return;
        Buffer.BlockCopy(_buffer, _start, _buffer, 0, unread);
        _bufferOffset += _start;
        _start = 0;
        _end = unread;
    }

    // Called with a full buffer that is still too small for count. Doubles (at most up to count) rather than
    // jumping straight to count, so a corrupt length near the end of a short file cannot make us allocate much.
    private void Grow(int count)
    {
        int target = (int)Math.Min((long)_buffer.Length * 2, ((long)count + 4095) & ~4095L);
        var bigger = ArrayPool<byte>.Shared.Rent(target);
        Buffer.BlockCopy(_buffer, _start, bigger, 0, _end - _start);
        ArrayPool<byte>.Shared.Return(_buffer);
        _bufferOffset += _start;
        _end -= _start;
        _start = 0;
        _buffer = bigger;
    }

    /// <summary>Consumes up to <paramref name="count"/> bytes without keeping them; returns how many were skipped.</summary>
    private long Skip(long count)
    {
        long skipped = 0;
        while (skipped < count)
        {
            if (_end == _start && !Fill(1))
                break;
            int take = (int)Math.Min(_end - _start, count - skipped);
            _start += take;
            skipped += take;
        }
        return skipped;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Unread(int count) => new(_buffer, _start, count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Consume(int count) => _start += count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ushort ReadUInt16(ReadOnlySpan<byte> source) =>
        _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(source) : BinaryPrimitives.ReadUInt16LittleEndian(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadUInt32(ReadOnlySpan<byte> source) =>
        _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(source) : BinaryPrimitives.ReadUInt32LittleEndian(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong ReadUInt64(ReadOnlySpan<byte> source) =>
        _bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(source) : BinaryPrimitives.ReadUInt64LittleEndian(source);

    /// <summary>Records damage and ends reading. Always returns false so callers can <c>return Fail(...)</c>.</summary>
    private bool Fail(long offset, string message)
    {
        Error ??= new CaptureError(offset, message);
        _finished = true;
        return false;
    }

    private bool End()
    {
        _finished = true;
        return false;
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using static Survey6.Packets.Capture.PcapngFormat;

namespace Survey6.Packets.Capture;

/// <summary>
/// Writes one pcapng section (host byte order, nanosecond timestamps) to a stream: the Section Header Block
/// on construction, then Interface Description, Enhanced Packet and Interface Statistics Blocks as asked.
/// Output goes through one pooled buffer, so <see cref="WritePacket(int, long, ReadOnlySpan{byte}, uint)"/>
/// allocates nothing. Not thread-safe. The caller owns durability (fsync) and rotation: <see cref="Flush"/>
/// hands everything buffered to the stream; after an I/O exception the output is undefined.
/// </summary>
public sealed class PcapngWriter : IDisposable, IAsyncDisposable
{
    /// <summary>Holds a full-size Ethernet jumbo frame block and amortises stream calls.</summary>
    public const int DefaultBufferSize = 64 * 1024;

    private const int MinimumBufferSize = 256;

    // EPB header through the original length field: type, length, interface, ts high, ts low, caplen, origlen.
    private const int EpbHeaderLength = EpbOffset.Data;

    // Largest captured length we accept, so that block length arithmetic stays in int and the u32 field.
    private const int MaximumCapturedLength = int.MaxValue - 1024;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly List<uint> _snapLengths = [];
    private byte[] _buffer;
    private int _used;
    private long _flushed;
    private bool _disposed;

    /// <summary>Starts a section and writes its SHB (buffered until the first flush).</summary>
    /// <param name="stream">Writable destination; positioned where the section should begin.</param>
    /// <param name="section">SHB options and survey6 metadata.</param>
    /// <param name="leaveOpen">Keep <paramref name="stream"/> open when the writer is disposed.</param>
    /// <param name="bufferSize">Bytes buffered before the stream is written; packets larger than this bypass the buffer.</param>
    public PcapngWriter(Stream stream, PcapngSectionInfo section, bool leaveOpen = false, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(section);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, MinimumBufferSize);
        if (!stream.CanWrite)
        {
            throw new ArgumentException("Stream is not writable.", nameof(stream));
        }

        // Encode before renting so that invalid options leave nothing to clean up.
        var options = new OptionList();
        // mergecap rewrites the first SHB comment (appends "File created by merging: ..."), so a metadata
        // entry must never be first.
        options.AddString(
            PcapngFormat.Option.Comment,
            section.Comment ?? (section.Metadata.Count > 0 ? PcapngMetadata.DefaultSectionComment : null));
        foreach (var (key, value) in section.Metadata)
        {
            options.AddString(PcapngFormat.Option.Comment, PcapngMetadata.FormatComment(key, value));
        }

        options.AddString(PcapngFormat.ShbOption.Hardware, section.Hardware);
        options.AddString(PcapngFormat.ShbOption.Os, section.Os);
        options.AddString(PcapngFormat.ShbOption.UserApplication, section.UserApplication);

        _stream = stream;
        _leaveOpen = leaveOpen;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);

        Span<byte> head = stackalloc byte[ShbOffset.Options];
        BinaryPrimitives.WriteUInt32LittleEndian(head[ShbOffset.ByteOrderMagic..], PcapngFormat.ByteOrderMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(head[ShbOffset.MajorVersion..], PcapngFormat.MajorVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(head[ShbOffset.MinorVersion..], PcapngFormat.MinorVersion);
        BinaryPrimitives.WriteInt64LittleEndian(head[ShbOffset.SectionLength..], PcapngFormat.SectionLengthUnspecified);
        WriteBlock(PcapngFormat.BlockType.SectionHeader, head, options);
    }

    /// <summary>Interfaces added so far; valid ids are 0 .. InterfaceCount - 1.</summary>
    public int InterfaceCount => _snapLengths.Count;

    /// <summary>Bytes produced so far, buffered or not: the file size after the next <see cref="Flush"/>. Useful for rotation.</summary>
    public long BytesWritten => _flushed + _used;

    /// <summary>Writes an IDB and returns the interface id to pass to the packet and statistics methods.</summary>
    public int AddInterface(PcapngInterfaceInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        ObjectDisposedException.ThrowIf(_disposed, this);

        var options = new OptionList();
        options.AddString(PcapngFormat.Option.Comment, info.Comment);
        options.AddString(PcapngFormat.IdbOption.Name, info.Name);
        options.AddString(PcapngFormat.IdbOption.Description, info.Description);
        options.Add(PcapngFormat.IdbOption.TimestampResolution, [PcapngFormat.TimestampResolutionNanoseconds]);
        if (info.Filter is not null)
        {
            var filter = new byte[1 + Encoding.UTF8.GetByteCount(info.Filter)];
            filter[0] = PcapngFormat.FilterType.LibpcapString;
            Encoding.UTF8.GetBytes(info.Filter, filter.AsSpan(1));
            options.Add(PcapngFormat.IdbOption.Filter, filter);
        }

        options.AddString(PcapngFormat.IdbOption.Os, info.Os);

        Span<byte> head = stackalloc byte[IdbOffset.Options];
        BinaryPrimitives.WriteUInt16LittleEndian(head[IdbOffset.LinkType..], (ushort)info.LinkType);
        BinaryPrimitives.WriteUInt16LittleEndian(head[IdbOffset.Reserved..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(head[IdbOffset.SnapLength..], info.SnapLength);
        WriteBlock(PcapngFormat.BlockType.InterfaceDescription, head, options);

        _snapLengths.Add(info.SnapLength);
        return _snapLengths.Count - 1;
    }

    /// <summary>Writes an EPB without options.</summary>
    /// <param name="interfaceId">Id returned by <see cref="AddInterface"/>.</param>
    /// <param name="timestampNanoseconds">Nanoseconds since the Unix epoch; not negative.</param>
    /// <param name="data">Captured bytes; no longer than the interface snap length (unless that is 0).</param>
    /// <param name="originalLength">Length on the wire; at least <c>data.Length</c>.</param>
    public void WritePacket(int interfaceId, long timestampNanoseconds, ReadOnlySpan<byte> data, uint originalLength) =>
        WritePacketCore(interfaceId, timestampNanoseconds, data, originalLength, 0, false, 0, false);

    /// <summary>Writes an EPB with optional <c>epb_flags</c> (see <see cref="PcapngFormat.EpbFlags"/>) and <c>epb_dropcount</c>.</summary>
    public void WritePacket(int interfaceId, long timestampNanoseconds, ReadOnlySpan<byte> data, uint originalLength, uint? flags, ulong? dropCount) =>
        WritePacketCore(
            interfaceId, timestampNanoseconds, data, originalLength, flags.GetValueOrDefault(), flags.HasValue, dropCount.GetValueOrDefault(), dropCount.HasValue);

    /// <summary>Writes an ISB for an interface; null counters are omitted.</summary>
    /// <param name="interfaceId">Id returned by <see cref="AddInterface"/>.</param>
    /// <param name="timestampNanoseconds">When the counters were read, ns since the Unix epoch.</param>
    /// <param name="stats">The counters.</param>
    public void WriteInterfaceStatistics(int interfaceId, long timestampNanoseconds, PcapngInterfaceStatistics stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckInterface(interfaceId);
        ArgumentOutOfRangeException.ThrowIfNegative(timestampNanoseconds);

        var options = new OptionList();
        options.AddString(PcapngFormat.Option.Comment, stats.Comment);
        options.AddTimestamp(PcapngFormat.IsbOption.StartTime, stats.StartTimeNanoseconds);
        options.AddTimestamp(PcapngFormat.IsbOption.EndTime, stats.EndTimeNanoseconds);
        options.AddUInt64(PcapngFormat.IsbOption.InterfaceReceived, stats.InterfaceReceived);
        options.AddUInt64(PcapngFormat.IsbOption.InterfaceDropped, stats.InterfaceDropped);
        options.AddUInt64(PcapngFormat.IsbOption.FilterAccepted, stats.FilterAccepted);
        options.AddUInt64(PcapngFormat.IsbOption.OsDropped, stats.OsDropped);
        options.AddUInt64(PcapngFormat.IsbOption.UserDelivered, stats.UserDelivered);

        Span<byte> head = stackalloc byte[IsbOffset.Options];
        BinaryPrimitives.WriteUInt32LittleEndian(head[IsbOffset.InterfaceId..], (uint)interfaceId);
        WriteTimestamp(head[IsbOffset.TimestampHigh..], timestampNanoseconds);
        WriteBlock(PcapngFormat.BlockType.InterfaceStatistics, head, options);
    }

    /// <summary>Hands buffered blocks to the stream and flushes it. Durable storage (fsync) is the caller's call.</summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        DrainBuffer();
        _stream.Flush();
    }

    /// <inheritdoc cref="Flush"/>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await DrainBufferAsync(cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Flushes, then disposes the stream unless the writer was created with leaveOpen.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            DrainBuffer();
            _stream.Flush();
        }
        finally
        {
            Release();
            if (!_leaveOpen)
            {
                _stream.Dispose();
            }
        }
    }

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await DrainBufferAsync(CancellationToken.None).ConfigureAwait(false);
            await _stream.FlushAsync().ConfigureAwait(false);
        }
        finally
        {
            Release();
            if (!_leaveOpen)
            {
                await _stream.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private void WritePacketCore(
        int interfaceId, long timestampNanoseconds, ReadOnlySpan<byte> data, uint originalLength, uint flags, bool hasFlags, ulong dropCount, bool hasDropCount)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckInterface(interfaceId);
        ArgumentOutOfRangeException.ThrowIfNegative(timestampNanoseconds);
        if (data.Length > MaximumCapturedLength)
        {
            throw new ArgumentOutOfRangeException(nameof(data), data.Length, "Captured data is too long for a pcapng block.");
        }

        var snapLength = _snapLengths[interfaceId];
        if (snapLength != 0 && (uint)data.Length > snapLength)
        {
            throw new ArgumentOutOfRangeException(nameof(data), data.Length, $"Captured length exceeds the interface snap length {snapLength}.");
        }

        if (originalLength < (uint)data.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(originalLength), originalLength, "Original length is less than the captured length.");
        }

        var paddedLength = PcapngFormat.Pad(data.Length);
        var optionsLength = (hasFlags ? PcapngFormat.OptionHeaderLength + 4 : 0) + (hasDropCount ? PcapngFormat.OptionHeaderLength + 8 : 0);
        if (optionsLength != 0)
        {
            optionsLength += PcapngFormat.OptionHeaderLength;
        }

        var tailLength = optionsLength + PcapngFormat.BlockTrailerLength;
        var total = EpbHeaderLength + paddedLength + tailLength;

        if (total <= _buffer.Length)
        {
            if (_buffer.Length - _used < total)
            {
                DrainBuffer();
            }

            var block = _buffer.AsSpan(_used, total);
            WriteEpbHeader(block, total, interfaceId, timestampNanoseconds, data.Length, originalLength);
            data.CopyTo(block[EpbHeaderLength..]);
            block.Slice(EpbHeaderLength + data.Length, paddedLength - data.Length).Clear();
            WriteEpbTail(block[(EpbHeaderLength + paddedLength)..], total, flags, hasFlags, dropCount, hasDropCount);
            _used += total;
            return;
        }

        // Larger than the whole buffer: header and tail through the buffer, the data straight to the stream.
        DrainBuffer();
        WriteEpbHeader(_buffer, total, interfaceId, timestampNanoseconds, data.Length, originalLength);
        _used = EpbHeaderLength;
        DrainBuffer();
        _stream.Write(data);
        _flushed += data.Length;
        var tail = _buffer.AsSpan(0, (paddedLength - data.Length) + tailLength);
        tail[..(paddedLength - data.Length)].Clear();
        WriteEpbTail(tail[(paddedLength - data.Length)..], total, flags, hasFlags, dropCount, hasDropCount);
        _used = tail.Length;
    }

    private static void WriteEpbHeader(Span<byte> b, int total, int interfaceId, long timestampNanoseconds, int capturedLength, uint originalLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b[BlockOffset.Type..], PcapngFormat.BlockType.EnhancedPacket);
        BinaryPrimitives.WriteUInt32LittleEndian(b[BlockOffset.TotalLength..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(b[EpbOffset.InterfaceId..], (uint)interfaceId);
        WriteTimestamp(b[EpbOffset.TimestampHigh..], timestampNanoseconds);
        BinaryPrimitives.WriteUInt32LittleEndian(b[EpbOffset.CapturedLength..], (uint)capturedLength);
        BinaryPrimitives.WriteUInt32LittleEndian(b[EpbOffset.OriginalLength..], originalLength);
    }

    private static void WriteEpbTail(Span<byte> b, int total, uint flags, bool hasFlags, ulong dropCount, bool hasDropCount)
    {
        var at = 0;
        if (hasFlags)
        {
            at += WriteOptionHeader(b, PcapngFormat.EpbOption.Flags, 4);
            BinaryPrimitives.WriteUInt32LittleEndian(b[at..], flags);
            at += 4;
        }

        if (hasDropCount)
        {
            at += WriteOptionHeader(b[at..], PcapngFormat.EpbOption.DropCount, 8);
            BinaryPrimitives.WriteUInt64LittleEndian(b[at..], dropCount);
            at += 8;
        }

        if (at != 0)
        {
            at += WriteOptionHeader(b[at..], PcapngFormat.Option.EndOfOptions, 0);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(b[at..], (uint)total);
    }

    private static int WriteOptionHeader(Span<byte> b, ushort code, ushort length)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(b[OptionOffset.Code..], code);
        BinaryPrimitives.WriteUInt16LittleEndian(b[OptionOffset.Length..], length);
        return OptionOffset.Value;
    }

    // pcapng timestamps are two host-order 32-bit words, high first, not one 64-bit integer.
    private static void WriteTimestamp(Span<byte> b, long timestampNanoseconds)
    {
        var ts = (ulong)timestampNanoseconds;
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)(ts >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(b[TimestampLowWordOffset..], (uint)ts);
    }

    // For the rare blocks (SHB, IDB, ISB): build the whole block, then copy it out. head holds the block up to
    // its options with the fixed fields filled in; the type and the lengths are written here.
    private void WriteBlock(uint blockType, ReadOnlySpan<byte> head, OptionList options)
    {
        var total = head.Length + options.EncodedLength + PcapngFormat.BlockTrailerLength;
        var block = new byte[total];
        head[BlockOffset.Body..].CopyTo(block.AsSpan(BlockOffset.Body));
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(BlockOffset.Type), blockType);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(BlockOffset.TotalLength), (uint)total);
        options.Encode(block.AsSpan(head.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(total - PcapngFormat.BlockTrailerLength), (uint)total);
        WriteRaw(block);
    }

    private void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _buffer.Length - _used)
        {
            DrainBuffer();
            if (bytes.Length > _buffer.Length)
            {
                _stream.Write(bytes);
                _flushed += bytes.Length;
                return;
            }
        }

        bytes.CopyTo(_buffer.AsSpan(_used));
        _used += bytes.Length;
    }

    private void CheckInterface(int interfaceId)
    {
        if ((uint)interfaceId >= (uint)_snapLengths.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(interfaceId), interfaceId, $"No such interface; {_snapLengths.Count} added.");
        }
    }

    private void DrainBuffer()
    {
        if (_used == 0)
        {
            return;
        }

        _stream.Write(_buffer, 0, _used);
        _flushed += _used;
        _used = 0;
    }

    private async ValueTask DrainBufferAsync(CancellationToken cancellationToken)
    {
        if (_used == 0)
        {
            return;
        }

        await _stream.WriteAsync(_buffer.AsMemory(0, _used), cancellationToken).ConfigureAwait(false);
        _flushed += _used;
        _used = 0;
    }

    private void Release()
    {
        var buffer = _buffer;
        _buffer = [];
        _used = 0;
        if (buffer.Length != 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Options of one block in write order; end-of-options is added on encoding when the list is not empty.</summary>
    private sealed class OptionList
    {
        private readonly List<(ushort Code, byte[] Value)> _options = [];

        public int EncodedLength
        {
            get
            {
                if (_options.Count == 0)
                {
                    return 0;
                }

                var length = PcapngFormat.OptionHeaderLength;
                foreach (var (_, value) in _options)
                {
                    length += PcapngFormat.OptionHeaderLength + PcapngFormat.Pad(value.Length);
                }

                return length;
            }
        }

        public void Add(ushort code, byte[] value)
        {
            if (value.Length > PcapngFormat.MaximumOptionValueLength)
            {
                throw new ArgumentException($"Option {code} value is {value.Length} bytes; pcapng allows {PcapngFormat.MaximumOptionValueLength}.");
            }

            _options.Add((code, value));
        }

        public void AddString(ushort code, string? value)
        {
            if (value is not null)
            {
                Add(code, Encoding.UTF8.GetBytes(value));
            }
        }

        public void AddUInt64(ushort code, ulong? value)
        {
            if (value is { } v)
            {
                var bytes = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, v);
                Add(code, bytes);
            }
        }

        public void AddTimestamp(ushort code, long? timestampNanoseconds)
        {
            if (timestampNanoseconds is { } ts)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(ts, nameof(timestampNanoseconds));
                var bytes = new byte[8];
                WriteTimestamp(bytes, ts);
                Add(code, bytes);
            }
        }

        public void Encode(Span<byte> destination)
        {
            if (_options.Count == 0)
            {
                return;
            }

            var at = 0;
            foreach (var (code, value) in _options)
            {
                at += WriteOptionHeader(destination[at..], code, (ushort)value.Length);
                value.CopyTo(destination[at..]);
                destination.Slice(at + value.Length, PcapngFormat.Pad(value.Length) - value.Length).Clear();
                at += PcapngFormat.Pad(value.Length);
            }

            WriteOptionHeader(destination[at..], PcapngFormat.Option.EndOfOptions, 0);
        }
    }
}

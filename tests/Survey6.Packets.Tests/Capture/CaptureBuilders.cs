using System.Buffers.Binary;
using System.Text;

namespace Survey6.Packets.Tests.Capture;

/// <summary>Appends integers in a chosen byte order.</summary>
internal sealed class ByteWriter(bool bigEndian)
{
    private readonly List<byte> _bytes = [];

    public bool BigEndian { get; set; } = bigEndian;

    public int Length => _bytes.Count;

    public ByteWriter U16(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        if (BigEndian) BinaryPrimitives.WriteUInt16BigEndian(b, value);
        else BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        return Bytes(b);
    }

    public ByteWriter U32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        if (BigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, value);
        else BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return Bytes(b);
    }

    public ByteWriter U64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        if (BigEndian) BinaryPrimitives.WriteUInt64BigEndian(b, value);
        else BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        return Bytes(b);
    }

    public ByteWriter Bytes(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
            _bytes.Add(b);
        return this;
    }

    public ByteWriter Pad4()
    {
        while (_bytes.Count % 4 != 0)
            _bytes.Add(0);
        return this;
    }

    public void PatchU32(int position, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        if (BigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, value);
        else BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        for (int i = 0; i < 4; i++)
            _bytes[position + i] = b[i];
    }

    public byte[] ToArray() => [.. _bytes];
}

/// <summary>A pcapng option; the value is encoded when written, in the byte order of its section.</summary>
internal sealed record Opt(ushort Code, Func<bool, byte[]> Encode)
{
    public static Opt Text(ushort code, string text) => new(code, _ => Encoding.UTF8.GetBytes(text));

    public static Opt Raw(ushort code, params byte[] value) => new(code, _ => value);

    public static Opt Byte(ushort code, byte value) => new(code, _ => [value]);

    public static Opt UInt64(ushort code, ulong value) => new(code, be => new ByteWriter(be).U64(value).ToArray());

    // Timestamps in options are two 32-bit words, high first.
    public static Opt Timestamp(ushort code, ulong value) =>
        new(code, be => new ByteWriter(be).U32((uint)(value >> 32)).U32((uint)value).ToArray());

    public static Opt Custom(ushort code, uint pen, string text) =>
        new(code, be => new ByteWriter(be).U32(pen).Bytes(Encoding.UTF8.GetBytes(text)).ToArray());
}

/// <summary>Writes classic pcap files.</summary>
internal sealed class PcapBuilder
{
    private readonly ByteWriter _out;

    public PcapBuilder(bool bigEndian = false, bool nanoseconds = false, uint linkType = 1, uint snapLength = 65535,
        ushort versionMajor = 2, ushort versionMinor = 4)
    {
        _out = new ByteWriter(bigEndian);
        _out.U32(nanoseconds ? 0xA1B23C4Du : 0xA1B2C3D4u).U16(versionMajor).U16(versionMinor)
            .U32(0).U32(0).U32(snapLength).U32(linkType);
    }

    public int Length => _out.Length;

    public PcapBuilder Record(uint seconds, uint fraction, byte[] data, uint? originalLength = null, uint? capturedLength = null)
    {
        _out.U32(seconds).U32(fraction).U32(capturedLength ?? (uint)data.Length).U32(originalLength ?? (uint)data.Length).Bytes(data);
        return this;
    }

    public byte[] Build() => _out.ToArray();
}

/// <summary>Writes pcapng files block by block; every block is well formed unless built with <see cref="Raw"/>.</summary>
internal sealed class PcapngBuilder
{
    private readonly List<byte> _file = [];
    private bool _bigEndian;

    public int Length => _file.Count;

    public PcapngBuilder Section(bool bigEndian = false, ushort major = 1, ushort minor = 0, params Opt[] options)
    {
        _bigEndian = bigEndian;
        return Block(0x0A0D0D0A, w => w.U32(0x1A2B3C4D).U16(major).U16(minor).U64(ulong.MaxValue), options);
    }

    public PcapngBuilder Interface(ushort linkType = 1, uint snapLength = 0, params Opt[] options) =>
        Block(1, w => w.U16(linkType).U16(0).U32(snapLength), options);

    public PcapngBuilder Enhanced(uint interfaceId, ulong timestamp, byte[] data, uint? originalLength = null, params Opt[] options) =>
        Block(6, w => w.U32(interfaceId).U32((uint)(timestamp >> 32)).U32((uint)timestamp)
            .U32((uint)data.Length).U32(originalLength ?? (uint)data.Length).Bytes(data).Pad4(), options);

    public PcapngBuilder Obsolete(ushort interfaceId, ushort dropsCount, ulong timestamp, byte[] data, uint? originalLength = null) =>
        Block(2, w => w.U16(interfaceId).U16(dropsCount).U32((uint)(timestamp >> 32)).U32((uint)timestamp)
            .U32((uint)data.Length).U32(originalLength ?? (uint)data.Length).Bytes(data).Pad4(), []);

    /// <summary>An SPB carrying exactly <paramref name="blockData"/> (padded) whatever the original length says.</summary>
    public PcapngBuilder Simple(uint originalLength, byte[] blockData) =>
        Block(3, w => w.U32(originalLength).Bytes(blockData).Pad4(), []);

    public PcapngBuilder Statistics(uint interfaceId, ulong timestamp, params Opt[] options) =>
        Block(5, w => w.U32(interfaceId).U32((uint)(timestamp >> 32)).U32((uint)timestamp), options);

    public PcapngBuilder Custom(uint enterpriseNumber, byte[] data, bool copyable = true, params Opt[] options) =>
        Block(copyable ? 0x00000BADu : 0x40000BADu, w => w.U32(enterpriseNumber).Bytes(data).Pad4(), options);

    /// <summary>Any block type with a raw body (padded to 4).</summary>
    public PcapngBuilder Other(uint type, byte[] body) => Block(type, w => w.Bytes(body).Pad4(), []);

    /// <summary>Bytes appended verbatim (for damaged blocks).</summary>
    public PcapngBuilder Raw(byte[] bytes)
    {
        _file.AddRange(bytes);
        return this;
    }

    /// <summary>A ByteWriter in the current section's byte order, for hand-made damaged blocks.</summary>
    public ByteWriter Writer() => new(_bigEndian);

    public byte[] Build() => [.. _file];

    private PcapngBuilder Block(uint type, Action<ByteWriter> body, Opt[] options)
    {
        var w = new ByteWriter(_bigEndian);
        w.U32(type).U32(0);
        body(w);
        if (options.Length > 0)
        {
            foreach (var option in options)
            {
                byte[] value = option.Encode(_bigEndian);
                w.U16(option.Code).U16((ushort)value.Length).Bytes(value).Pad4();
            }
            w.U16(0).U16(0);
        }
        int total = w.Length + 4;
        w.U32((uint)total);
        w.PatchU32(4, (uint)total);
        _file.AddRange(w.ToArray());
        return this;
    }
}

/// <summary>A read-only, non-seekable stream that hands out data in small random pieces, like a network upload.</summary>
internal sealed class ChunkedStream(byte[] data, int seed, int maxChunk) : Stream
{
    private readonly Random _random = new(seed);
    private int _position;

    public bool Disposed { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(Math.Min(buffer.Length, data.Length - _position), _random.Next(1, maxChunk + 1));
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        Disposed = true;
        base.Dispose(disposing);
    }
}

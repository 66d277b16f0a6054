using ZstdSharp;

namespace Survey6.Aggregator.Parquet;

internal enum PhysicalType
{
    Boolean = 0,
    Int32 = 1,
    Int64 = 2,
    Double = 5,
    ByteArray = 6,
}

/// <summary>Parquet ConvertedType values used here (the legacy annotation, written beside the LogicalType for older readers).</summary>
internal static class ConvertedType
{
    public const int Utf8 = 0, List = 3, TimestampMicros = 10, UInt8 = 11, UInt16 = 12, UInt32 = 13;
}

/// <summary>
/// The LogicalType annotations written here (parquet.thrift <c>LogicalType</c>). A timestamp is INT64 microseconds since
/// the Unix epoch, UTC-adjusted: the one form Spark, pyarrow and DuckDB all read as an instant without options.
/// </summary>
internal enum LogicalAnnotation
{
    None,

    /// <summary><c>TIMESTAMP(isAdjustedToUTC = true, unit = MICROS)</c>, ConvertedType <c>TIMESTAMP_MICROS</c>.</summary>
    TimestampMicrosUtc,
}

/// <summary>Parquet Encoding values used here.</summary>
internal static class ParquetEncoding
{
    public const int Plain = 0, Rle = 3, DeltaBinaryPacked = 5, RleDictionary = 8;
}

/// <summary>A leaf column: flat (optional or required) or an optional list of optional elements (3-level LIST).</summary>
internal sealed record ColumnSpec(string Name, PhysicalType Type, int? ConvertedType, bool Optional, bool IsList = false,
    LogicalAnnotation Logical = LogicalAnnotation.None)
{
    /// <summary>An INT64 of microseconds since the Unix epoch, annotated as a UTC timestamp.</summary>
    public static ColumnSpec Timestamp(string name, bool optional) =>
        new(name, PhysicalType.Int64, global::Survey6.Aggregator.Parquet.ConvertedType.TimestampMicros, optional, Logical: LogicalAnnotation.TimestampMicrosUtc);

    public int MaxDefinition => IsList ? 3 : Optional ? 1 : 0;

    public int MaxRepetition => IsList ? 1 : 0;

    public IReadOnlyList<string> Path => IsList ? [Name, "list", "element"] : [Name];
}

/// <summary>One column chunk as encoded by a column: an optional dictionary page and one data page, uncompressed.</summary>
internal sealed class ChunkBuilder
{
    public readonly ByteBuffer Dictionary = new();
    public readonly ByteBuffer Page = new(1 << 20);
    public int DictionaryCount;
    public bool HasDictionary;
    public int Slots;
    public int ValueEncoding;
    public long NullCount;
    public long? Min;
    public long? Max;

    // Scratch for the column encoders.
    public int[] Levels = new int[1024];
    public byte[] Bits = new byte[1024];
    public int[] Repetitions = new int[1024];
    public int[] Indices = new int[1024];

    public void Reset()
    {
        Dictionary.Clear();
        Page.Clear();
        DictionaryCount = 0;
        HasDictionary = false;
        Slots = 0;
        ValueEncoding = ParquetEncoding.Plain;
        NullCount = 0;
        Min = Max = null;
    }

    public static byte[] Ensure(ref byte[] array, int size)
    {
        if (array.Length < size)
            array = new byte[Math.Max(size, array.Length * 2)];
        return array;
    }

    public static int[] Ensure(ref int[] array, int size)
    {
        if (array.Length < size)
            array = new int[Math.Max(size, array.Length * 2)];
        return array;
    }
}

/// <summary>
/// A minimal Parquet writer (format version 1, zstd pages, no encryption): row groups of column chunks with an
/// optional dictionary page and one data page each, then the Thrift footer. Written for the packets dataset,
/// where the general-purpose library spent most of the parse stage's time hashing strings the writer had already
/// interned; here dictionaries come straight from the interned codes.
/// </summary>
internal sealed class ParquetFileWriter : IDisposable
{
    private static readonly byte[] Magic = "PAR1"u8.ToArray();

    private readonly Stream _output;
    private readonly IReadOnlyList<ColumnSpec> _columns;
    private readonly IReadOnlyDictionary<string, string> _metadata;
    private readonly Compressor _zstd = new(1);
    private readonly ByteBuffer _header = new(256);
    private readonly List<RowGroupInfo> _rowGroups = [];
    private byte[] _compressed = new byte[1 << 16];
    private long _position;
    private RowGroupInfo? _current;

    public ParquetFileWriter(Stream output, IReadOnlyList<ColumnSpec> columns, IReadOnlyDictionary<string, string> metadata)
    {
        _output = output;
        _columns = columns;
        _metadata = metadata;
        Write(Magic);
    }

    public void BeginRowGroup(int rows) => _current = new RowGroupInfo(rows, _position);

    /// <summary>Compresses and writes the chunk of the next column (columns in schema order).</summary>
    public void WriteChunk(ChunkBuilder chunk)
    {
        var group = _current ?? throw new InvalidOperationException("No row group started.");
        var spec = _columns[group.Chunks.Count];
        var info = new ChunkInfo { Start = _position };
        if (chunk.HasDictionary)
        {
            info.DictionaryOffset = _position;
            WritePage(PageKind.Dictionary, chunk.Dictionary.Written, chunk.DictionaryCount, 0, info);
        }
        info.DataOffset = _position;
        WritePage(PageKind.Data, chunk.Page.Written, chunk.Slots, chunk.ValueEncoding, info);
        info.Values = chunk.Slots;
        info.Encodings = chunk.HasDictionary ? [ParquetEncoding.Plain, ParquetEncoding.Rle, ParquetEncoding.RleDictionary]
            : chunk.ValueEncoding == ParquetEncoding.DeltaBinaryPacked ? [ParquetEncoding.Rle, ParquetEncoding.DeltaBinaryPacked]
            : [ParquetEncoding.Plain, ParquetEncoding.Rle];
        info.NullCount = chunk.NullCount;
        info.Min = chunk.Min;
        info.Max = chunk.Max;
        info.Spec = spec;
        group.Chunks.Add(info);
    }

    public void EndRowGroup()
    {
        var group = _current ?? throw new InvalidOperationException("No row group started.");
        if (group.Chunks.Count != _columns.Count)
            throw new InvalidOperationException($"Row group has {group.Chunks.Count} of {_columns.Count} columns.");
        _rowGroups.Add(group);
        _current = null;
    }

    /// <summary>Writes the footer. The stream is left open.</summary>
    public void Finish()
    {
        var footer = new ByteBuffer(4096);
        var t = new ThriftCompactWriter(footer);
        t.BeginStruct();
        t.I32(1, 1);
        WriteSchema(t);
        t.I64(3, _rowGroups.Sum(g => (long)g.Rows));
        t.StructListField(4, _rowGroups.Count);
        for (int g = 0; g < _rowGroups.Count; g++)
            WriteRowGroup(t, _rowGroups[g], g);
        if (_metadata.Count > 0)
        {
            t.StructListField(5, _metadata.Count);
            foreach (var (key, value) in _metadata)
            {
                t.BeginStruct();
                t.String(1, key);
                t.String(2, value);
                t.EndStruct();
            }
        }
        t.String(6, "survey6 aggregator");
        t.EndStruct();
        Write(footer.Written);
        Span<byte> tail = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(tail, footer.Length);
        Magic.CopyTo(tail[4..]);
        Write(tail);
    }

    public void Dispose() => _zstd.Dispose();

    private enum PageKind
    {
        Data = 0,
        Dictionary = 2,
    }

    private void WritePage(PageKind kind, ReadOnlySpan<byte> body, int values, int encoding, ChunkInfo info)
    {
        int bound = Compressor.GetCompressBound(body.Length);
        if (_compressed.Length < bound)
            _compressed = new byte[Math.Max(bound, _compressed.Length * 2)];
        int compressed = _zstd.Wrap(body, _compressed);

        _header.Clear();
        var t = new ThriftCompactWriter(_header);
        t.BeginStruct();
        t.I32(1, (int)kind);
        t.I32(2, body.Length);
        t.I32(3, compressed);
        if (kind == PageKind.Data)
        {
            t.StructField(5);
            t.I32(1, values);
            t.I32(2, encoding);
            t.I32(3, ParquetEncoding.Rle);
            t.I32(4, ParquetEncoding.Rle);
            t.EndStruct();
        }
        else
        {
            t.StructField(7);
            t.I32(1, values);
            t.I32(2, ParquetEncoding.Plain);
            t.EndStruct();
        }
        t.EndStruct();
        Write(_header.Written);
        Write(_compressed.AsSpan(0, compressed));
        info.Uncompressed += _header.Length + body.Length;
        info.Compressed += _header.Length + compressed;
    }

    private void WriteSchema(ThriftCompactWriter t)
    {
        int elements = 1 + _columns.Sum(c => c.IsList ? 3 : 1);
        t.StructListField(2, elements);
        t.BeginStruct();
        t.String(4, "schema");
        t.I32(5, _columns.Count);
        t.EndStruct();
        foreach (var c in _columns)
        {
            if (c.IsList)
            {
                t.BeginStruct();
                t.I32(3, 1); // OPTIONAL
                t.String(4, c.Name);
                t.I32(5, 1);
                t.I32(6, ConvertedType.List);
                t.EndStruct();
                t.BeginStruct();
                t.I32(3, 2); // REPEATED
                t.String(4, "list");
                t.I32(5, 1);
                t.EndStruct();
                Leaf(t, c, "element", optional: true);
            }
            else
            {
                Leaf(t, c, c.Name, c.Optional);
            }
        }

        static void Leaf(ThriftCompactWriter t, ColumnSpec c, string name, bool optional)
        {
            t.BeginStruct();
            t.I32(1, (int)c.Type);
            t.I32(3, optional ? 1 : 0);
            t.String(4, name);
            if (c.ConvertedType is { } converted)
                t.I32(6, converted);
            if (c.Logical == LogicalAnnotation.TimestampMicrosUtc)
            {
                // SchemaElement.logicalType (10) = LogicalType.TIMESTAMP (8) = TimestampType{isAdjustedToUTC (1), unit (2) = TimeUnit.MICROS (2)}.
                t.StructField(10);
                t.StructField(8);
                t.Bool(1, true);
                t.StructField(2);
                t.StructField(2);
                t.EndStruct();
                t.EndStruct();
                t.EndStruct();
                t.EndStruct();
            }
            t.EndStruct();
        }
    }

    private static void WriteRowGroup(ThriftCompactWriter t, RowGroupInfo group, int ordinal)
    {
        Span<byte> bytes = stackalloc byte[8];
        t.BeginStruct();
        t.StructListField(1, group.Chunks.Count);
        foreach (var chunk in group.Chunks)
        {
            t.BeginStruct();
            t.I64(2, chunk.Start);
            t.StructField(3);
            t.I32(1, (int)chunk.Spec!.Type);
            t.I32ListField(2, chunk.Encodings);
            t.StringListField(3, chunk.Spec.Path);
            t.I32(4, 6); // ZSTD
            t.I64(5, chunk.Values);
            t.I64(6, chunk.Uncompressed);
            t.I64(7, chunk.Compressed);
            t.I64(9, chunk.DataOffset);
            if (chunk.DictionaryOffset is { } dictionary)
                t.I64(11, dictionary);
            t.StructField(12);
            if (chunk.Min is { } min && chunk.Max is { } max)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, max);
                t.Binary(1, bytes);
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, min);
                t.Binary(2, bytes);
                t.I64(3, chunk.NullCount);
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, max);
                t.Binary(5, bytes);
                System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, min);
                t.Binary(6, bytes);
            }
            else
            {
                t.I64(3, chunk.NullCount);
            }
            t.EndStruct();
            t.EndStruct();
            t.EndStruct();
        }
        t.I64(2, group.Chunks.Sum(c => c.Uncompressed));
        t.I64(3, group.Rows);
        t.I64(5, group.Start);
        t.I64(6, group.Chunks.Sum(c => c.Compressed));
        t.I16(7, (short)ordinal);
        t.EndStruct();
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _output.Write(bytes);
        _position += bytes.Length;
    }

    private sealed class RowGroupInfo(int rows, long start)
    {
        public int Rows { get; } = rows;

        public long Start { get; } = start;

        public List<ChunkInfo> Chunks { get; } = [];
    }

    private sealed class ChunkInfo
    {
        public ColumnSpec? Spec;
        public long Start;
        public long DataOffset;
        public long? DictionaryOffset;
        public long Values;
        public long Uncompressed;
        public long Compressed;
        public long NullCount;
        public long? Min;
        public long? Max;
        public IReadOnlyList<int> Encodings = [];
    }
}

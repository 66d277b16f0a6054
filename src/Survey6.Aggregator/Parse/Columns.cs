using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Survey6.Aggregator.Parquet;

namespace Survey6.Aggregator.Parse;

/// <summary>One column of a row group being filled; encodes itself into a <see cref="ChunkBuilder"/>.</summary>
internal abstract class Column(ColumnSpec spec)
{
    public ColumnSpec Spec { get; } = spec;

    public abstract void Encode(int rows, ChunkBuilder chunk);

    /// <summary>Grows the per-row arrays, keeping their content; buffers start small so a short capture stays cheap.</summary>
    public virtual void Resize(int capacity)
    {
    }

    protected static PhysicalType PhysicalOf<T>() => typeof(T) == typeof(long) ? PhysicalType.Int64
        : typeof(T) == typeof(bool) ? PhysicalType.Boolean
        : typeof(T) == typeof(double) ? PhysicalType.Double
        : PhysicalType.Int32;

    protected static int? ConvertedOf<T>() => typeof(T) == typeof(byte) ? ConvertedType.UInt8
        : typeof(T) == typeof(ushort) ? ConvertedType.UInt16
        : typeof(T) == typeof(uint) ? ConvertedType.UInt32
        : null;

    /// <summary>Definition levels of a flat optional column: length prefix, then the hybrid encoding with bit width 1.</summary>
    protected static void WriteLevels(ReadOnlySpan<int> levels, int bitWidth, ByteBuffer page)
    {
        int at = page.Length;
        page.Int32(0);
        HybridEncoder.Encode(levels, bitWidth, page);
        page.PatchInt32(at, page.Length - at - 4);
    }

    /// <summary>Definition levels 0/1 given as bytes: the fast path for flat optional columns.</summary>
    protected static void WriteLevels(ReadOnlySpan<byte> present, ByteBuffer page)
    {
        int at = page.Length;
        page.Int32(0);
        HybridEncoder.EncodeBits(present, page);
        page.PatchInt32(at, page.Length - at - 4);
    }

    /// <summary>
    /// The repetition and definition levels of a list column (3-level LIST): per row, <paramref name="counts"/> is -1 for
    /// a null list, else its length; <paramref name="items"/> is their sum. Sets the chunk's slot and null counts.
    /// </summary>
    protected static void WriteListLevels(ReadOnlySpan<int> counts, int items, ChunkBuilder chunk)
    {
        // Dremel levels: definition 0 = null list, 1 = empty list, 3 = a present element; repetition 0 starts a row, 1 continues its list.
        int slots = 0;
        foreach (int count in counts)
            slots += Math.Max(1, count);
        var def = ChunkBuilder.Ensure(ref chunk.Levels, slots);
        var rep = ChunkBuilder.Ensure(ref chunk.Repetitions, slots);
        int slot = 0;
        foreach (int count in counts)
        {
            if (count <= 0)
            {
                def[slot] = count < 0 ? 0 : 1;
                rep[slot++] = 0;
                continue;
            }
            for (int k = 0; k < count; k++)
            {
                def[slot] = 3;
                rep[slot++] = k == 0 ? 0 : 1;
            }
        }
        chunk.Slots = slot;
        chunk.NullCount = slot - items;
        WriteLevels(rep.AsSpan(0, slot), 1, chunk.Page);
        WriteLevels(def.AsSpan(0, slot), 2, chunk.Page);
    }

    protected static void WriteSingleRunLevels(int level, int count, int bitWidth, ByteBuffer page)
    {
        int at = page.Length;
        page.Int32(0);
        HybridEncoder.EncodeRun(level, count, bitWidth, page);
        page.PatchInt32(at, page.Length - at - 4);
    }

    /// <summary>PLAIN values: little-endian, INT32 for the small unsigned types, bit-packed for booleans.</summary>
    public static void Plain<T>(ReadOnlySpan<T> values, ByteBuffer page)
        where T : struct
    {
        if (typeof(T) == typeof(long) || typeof(T) == typeof(int) || typeof(T) == typeof(uint) || typeof(T) == typeof(double))
        {
            page.Bytes(MemoryMarshal.AsBytes(values));
        }
        else if (typeof(T) == typeof(bool))
        {
            var bools = MemoryMarshal.Cast<T, bool>(values);
            var span = page.Reserve((bools.Length + 7) / 8);
            span.Clear();
            for (int i = 0; i < bools.Length; i++)
            {
                if (bools[i])
                    span[i >> 3] |= (byte)(1 << (i & 7));
            }
            page.Advance(span.Length);
        }
        else
        {
            var span = MemoryMarshal.Cast<byte, int>(page.Reserve(values.Length * 4));
            if (values.IsEmpty)
                return;
            if (typeof(T) == typeof(byte))
            {
                var v = MemoryMarshal.Cast<T, byte>(values);
                for (int i = 0; i < v.Length; i++)
                    span[i] = v[i];
            }
            else
            {
                var v = MemoryMarshal.Cast<T, ushort>(values);
                for (int i = 0; i < v.Length; i++)
                    span[i] = v[i];
            }
            page.Advance(values.Length * 4);
        }
    }

    /// <summary>RLE_DICTIONARY values: the index bit width, then the hybrid-encoded indices.</summary>
    protected static void WriteIndices(ReadOnlySpan<int> indices, int dictionarySize, ByteBuffer page)
    {
        // Width at least 1: some readers mishandle width-0 index runs.
        int width = Math.Max(1, HybridEncoder.BitWidth(dictionarySize - 1));
        page.Byte((byte)width);
        HybridEncoder.Encode(indices, width, page);
    }

    protected static void AppendPlainString(ReadOnlySpan<char> text, ByteBuffer dictionary)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        var span = dictionary.Reserve(4 + max);
        int n = Encoding.UTF8.GetBytes(text, span[4..]);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span, n);
        dictionary.Advance(4 + n);
    }
}

/// <summary>
/// How a column's values are encoded: small integer types through a dictionary (few distinct values, so a few
/// bits each and long runs), growing INT64s as deltas, the rest PLAIN.
/// </summary>
internal static class ValueEncoder
{
    public static bool IsDictionary<T>() => typeof(T) == typeof(byte) || typeof(T) == typeof(ushort) || typeof(T) == typeof(uint) || typeof(T) == typeof(int);

    public static uint AsUInt32<T>(T value) where T : struct =>
        typeof(T) == typeof(byte) ? Unsafe.As<T, byte>(ref value)
        : typeof(T) == typeof(ushort) ? Unsafe.As<T, ushort>(ref value)
        : Unsafe.As<T, uint>(ref value);

    /// <summary>Encodes the present values of a chunk (levels already written).</summary>
    /// <param name="stats">Min/max statistics for a PLAIN INT64 column too (delta-encoded ones always have them).</param>
    public static void Values<T>(ReadOnlySpan<T> values, bool delta, ValueDictionary? dictionary, ChunkBuilder chunk, bool stats = false)
        where T : struct
    {
        if (dictionary is not null && IsDictionary<T>())
        {
            if (values.IsEmpty)
                return;
            dictionary.Begin();
            var indices = ChunkBuilder.Ensure(ref chunk.Indices, values.Length);
            for (int i = 0; i < values.Length; i++)
                indices[i] = dictionary.IndexOf(AsUInt32(values[i]), chunk);
            chunk.HasDictionary = true;
            chunk.ValueEncoding = ParquetEncoding.RleDictionary;
            int width = Math.Max(1, HybridEncoder.BitWidth(chunk.DictionaryCount - 1));
            chunk.Page.Byte((byte)width);
            HybridEncoder.Encode(indices.AsSpan(0, values.Length), width, chunk.Page);
        }
        else if (delta && typeof(T) == typeof(long))
        {
            var longs = MemoryMarshal.Cast<T, long>(values);
            chunk.ValueEncoding = ParquetEncoding.DeltaBinaryPacked;
            DeltaEncoder.Encode(longs, chunk.Page);
            if (!longs.IsEmpty)
            {
                long min = long.MaxValue, max = long.MinValue;
                foreach (var l in longs)
                {
                    min = Math.Min(min, l);
                    max = Math.Max(max, l);
                }
                (chunk.Min, chunk.Max) = (min, max);
            }
        }
        else
        {
            Column.Plain(values, chunk.Page);
            if (stats && typeof(T) == typeof(long) && !values.IsEmpty)
            {
                var longs = MemoryMarshal.Cast<T, long>(values);
                long min = long.MaxValue, max = long.MinValue;
                foreach (var l in longs)
                {
                    min = Math.Min(min, l);
                    max = Math.Max(max, l);
                }
                (chunk.Min, chunk.Max) = (min, max);
            }
        }
    }
}

/// <summary>A nullable value per row; with <paramref name="timestamp"/>, INT64 microseconds annotated as a UTC timestamp.</summary>
internal sealed class NullableColumn<T>(string name, int capacity, ValueDictionary? dictionary = null, bool delta = false, bool timestamp = false)
    : Column(timestamp ? ColumnSpec.Timestamp(name, optional: true) : new ColumnSpec(name, PhysicalOf<T>(), ConvertedOf<T>(), Optional: true))
    where T : struct
{
    public T?[] Values = new T?[capacity];
    private T[] _dense = [];

    public override void Resize(int capacity) => Array.Resize(ref Values, capacity);

    public override void Encode(int rows, ChunkBuilder chunk)
    {
        var levels = ChunkBuilder.Ensure(ref chunk.Bits, rows);
        var values = Values;
        if (_dense.Length < rows)
            _dense = new T[Values.Length];
        var dense = _dense;
        int count = 0;
        for (int i = 0; i < rows; i++)
        {
            if (values[i] is { } v)
            {
                levels[i] = 1;
                dense[count++] = v;
            }
            else
            {
                levels[i] = 0;
            }
        }
        chunk.Slots = rows;
        chunk.NullCount = rows - count;
        WriteLevels(levels.AsSpan(0, rows), chunk.Page);
        // Timestamps are PLAIN, with statistics so that time filters skip row groups: some readers (Parquet.Net)
        // cannot decode a timestamp that is DELTA_BINARY_PACKED.
        ValueEncoder.Values<T>(dense.AsSpan(0, count), delta && !timestamp, dictionary, chunk, stats: timestamp);
    }
}

/// <summary>A value present in every row.</summary>
internal sealed class RequiredColumn<T>(string name, int capacity, ValueDictionary? dictionary = null, bool delta = false)
    : Column(new ColumnSpec(name, PhysicalOf<T>(), ConvertedOf<T>(), Optional: false))
    where T : struct
{
    public T[] Values = new T[capacity];

    public override void Resize(int capacity) => Array.Resize(ref Values, capacity);

    public override void Encode(int rows, ChunkBuilder chunk)
    {
        chunk.Slots = rows;
        ValueEncoder.Values<T>(Values.AsSpan(0, rows), delta, dictionary, chunk);
    }
}

/// <summary>
/// The same nullable value in every row of a file (capture metadata): a one-entry dictionary and one run. With
/// <paramref name="timestamp"/>, INT64 microseconds annotated as a UTC timestamp.
/// </summary>
internal sealed class ConstantColumn<T>(string name, bool timestamp = false)
    : Column(timestamp ? ColumnSpec.Timestamp(name, optional: true) : new ColumnSpec(name, PhysicalOf<T>(), ConvertedOf<T>(), Optional: true))
    where T : struct
{
    public T? Value { get; set; }

    public override void Encode(int rows, ChunkBuilder chunk)
    {
        chunk.Slots = rows;
        if (Value is not { } value)
        {
            chunk.NullCount = rows;
            WriteSingleRunLevels(0, rows, 1, chunk.Page);
            return;
        }
        WriteSingleRunLevels(1, rows, 1, chunk.Page);
        chunk.HasDictionary = true;
        chunk.DictionaryCount = 1;
        Plain<T>([value], chunk.Dictionary);
        chunk.ValueEncoding = ParquetEncoding.RleDictionary;
        chunk.Page.Byte(1);
        HybridEncoder.EncodeRun(0, rows, 1, chunk.Page);
    }
}

/// <summary>The same string in every row of a file.</summary>
internal sealed class ConstantStringColumn(string name)
    : Column(new ColumnSpec(name, PhysicalType.ByteArray, ConvertedType.Utf8, Optional: true))
{
    public string? Value { get; set; }

    public override void Encode(int rows, ChunkBuilder chunk)
    {
        chunk.Slots = rows;
        if (Value is null)
        {
            chunk.NullCount = rows;
            WriteSingleRunLevels(0, rows, 1, chunk.Page);
            return;
        }
        WriteSingleRunLevels(1, rows, 1, chunk.Page);
        chunk.HasDictionary = true;
        chunk.DictionaryCount = 1;
        AppendPlainString(Value, chunk.Dictionary);
        chunk.ValueEncoding = ParquetEncoding.RleDictionary;
        chunk.Page.Byte(1);
        HybridEncoder.EncodeRun(0, rows, 1, chunk.Page);
    }
}

/// <summary>Maps the row group's string codes to one column's dictionary indices, in order of first use.</summary>
internal sealed class DictionaryMap
{
    // Stamp and index side by side: one cache line per look-up, which matters with many distinct addresses.
    private Slot[] _slots = new Slot[4096];
    private int _generation;

    /// <summary>Starts a new column: every code is unmapped again (by generation, not by clearing).</summary>
    public void Begin(int codes)
    {
        if (_slots.Length < codes)
            _slots = new Slot[Math.Max(codes, _slots.Length * 2)];
        _generation++;
    }

    /// <summary>The dictionary index of <paramref name="code"/>, adding its text to the dictionary page when new.</summary>
    public int IndexOf(int code, StringTable table, ChunkBuilder chunk)
    {
        ref var slot = ref _slots[code];
        if (slot.Generation == _generation)
            return slot.Index;
        slot.Generation = _generation;
        AppendPlain(table[code].Span, chunk.Dictionary);
        return slot.Index = chunk.DictionaryCount++;
    }

    private static void AppendPlain(ReadOnlySpan<char> text, ByteBuffer dictionary)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        var span = dictionary.Reserve(4 + max);
        int n = Encoding.UTF8.GetBytes(text, span[4..]);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(span, n);
        dictionary.Advance(4 + n);
    }

    private struct Slot
    {
        public int Generation;
        public int Index;
    }
}

/// <summary>A nullable string per row, held as a code into the row group's <see cref="StringTable"/> (-1: null); dictionary-encoded.</summary>
internal sealed class StringColumn(string name, int capacity, StringTable table, DictionaryMap map)
    : Column(new ColumnSpec(name, PhysicalType.ByteArray, ConvertedType.Utf8, Optional: true))
{
    public int[] Codes = new int[capacity];

    public override void Resize(int capacity) => Array.Resize(ref Codes, capacity);

    public override void Encode(int rows, ChunkBuilder chunk)
    {
        var levels = ChunkBuilder.Ensure(ref chunk.Bits, rows);
        var indices = ChunkBuilder.Ensure(ref chunk.Indices, rows);
        map.Begin(table.Count);
        chunk.HasDictionary = true;
        var codes = Codes;
        int count = 0;
        for (int i = 0; i < rows; i++)
        {
            int code = codes[i];
            if (code < 0)
            {
                levels[i] = 0;
            }
            else
            {
                levels[i] = 1;
                indices[count++] = map.IndexOf(code, table, chunk);
            }
        }
        chunk.Slots = rows;
        chunk.NullCount = rows - count;
        WriteLevels(levels.AsSpan(0, rows), chunk.Page);
        if (count == 0)
        {
            chunk.HasDictionary = false;
            return;
        }
        chunk.ValueEncoding = ParquetEncoding.RleDictionary;
        WriteIndices(indices.AsSpan(0, count), chunk.DictionaryCount, chunk.Page);
    }
}

/// <summary>
/// A nullable list per row: <see cref="Counts"/>[row] = -1 for null, else that many items appended by
/// <see cref="Append"/> (in row order). Items are never null.
/// </summary>
internal abstract class ListColumn<T>(ColumnSpec spec, int capacity) : Column(spec)
{
    private T[] _items = new T[1024];

    public int[] Counts = new int[capacity];

    public override void Resize(int capacity) => Array.Resize(ref Counts, capacity);

    public int ItemCount { get; private set; }

    protected ReadOnlySpan<T> Items => _items.AsSpan(0, ItemCount);

    public void Append(T item)
    {
        if (ItemCount == _items.Length)
            Array.Resize(ref _items, _items.Length * 2);
        _items[ItemCount++] = item;
    }

    public void Reset() => ItemCount = 0;
}

/// <summary>A nullable list of strings per row, as codes into the row group's <see cref="StringTable"/>; dictionary-encoded.</summary>
internal sealed class StringListColumn(string name, int capacity, StringTable table, DictionaryMap map)
    : ListColumn<int>(new ColumnSpec(name, PhysicalType.ByteArray, ConvertedType.Utf8, Optional: true, IsList: true), capacity)
{
    public override void Encode(int rows, ChunkBuilder chunk)
    {
        WriteListLevels(Counts.AsSpan(0, rows), ItemCount, chunk);
        if (ItemCount == 0)
            return;
        var items = Items;
        var indices = ChunkBuilder.Ensure(ref chunk.Indices, items.Length);
        map.Begin(table.Count);
        chunk.HasDictionary = true;
        for (int k = 0; k < items.Length; k++)
            indices[k] = map.IndexOf(items[k], table, chunk);
        chunk.ValueEncoding = ParquetEncoding.RleDictionary;
        WriteIndices(indices.AsSpan(0, items.Length), chunk.DictionaryCount, chunk.Page);
    }
}

/// <summary>A nullable list of numbers per row; an empty list is told apart from null.</summary>
internal sealed class ValueListColumn<T>(string name, int capacity, ValueDictionary? dictionary = null, bool delta = false)
    : ListColumn<T>(new ColumnSpec(name, PhysicalOf<T>(), ConvertedOf<T>(), Optional: true, IsList: true), capacity)
    where T : struct
{
    public override void Encode(int rows, ChunkBuilder chunk)
    {
        WriteListLevels(Counts.AsSpan(0, rows), ItemCount, chunk);
        if (ItemCount > 0)
            ValueEncoder.Values(Items, delta, dictionary, chunk);
    }
}

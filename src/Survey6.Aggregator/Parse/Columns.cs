using Parquet;
using Parquet.Schema;

namespace Survey6.Aggregator.Parse;

/// <summary>One column of a row group being filled; written to Parquet in schema order.</summary>
internal abstract class Column(DataField field)
{
    public DataField Field { get; } = field;

    public abstract Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct);
}

/// <summary>Buffers reused by every column of a writer while one column is written.</summary>
internal sealed class ColumnScratch(int capacity)
{
    public readonly ReadOnlyMemory<char>[] DenseStrings = new ReadOnlyMemory<char>[capacity];
    public ReadOnlyMemory<char>[] ListValues = new ReadOnlyMemory<char>[1024];
    public int[] Definition = new int[capacity];
    public int[] Repetition = new int[1024];

    public int[] DefinitionFor(int rows)
    {
        if (Definition.Length < rows)
            Definition = new int[rows];
        return Definition;
    }
}

/// <summary>A nullable value per row.</summary>
internal sealed class NullableColumn<T>(string name, int capacity) : Column(new DataField<T?>(name))
    where T : struct
{
    public readonly T?[] Values = new T?[capacity];

    public override Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct) =>
        writer.WriteAsync<T>(Field, (ReadOnlyMemory<T?>)Values.AsMemory(0, rows), null, null, ct);
}

/// <summary>A value present in every row.</summary>
internal sealed class RequiredColumn<T>(string name, int capacity) : Column(new DataField<T>(name))
    where T : struct
{
    public readonly T[] Values = new T[capacity];

    public override Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct) =>
        writer.WriteAsync<T>(Field, (ReadOnlyMemory<T>)Values.AsMemory(0, rows), null, null, ct);
}

/// <summary>The same nullable value in every row of a file (capture metadata); filled once per file, not per row.</summary>
internal sealed class ConstantColumn<T>(string name, int capacity) : Column(new DataField<T?>(name))
    where T : struct
{
    private readonly T?[] _values = new T?[capacity];

    public void Set(T? value) => Array.Fill(_values, value);

    public override Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct) =>
        writer.WriteAsync<T>(Field, (ReadOnlyMemory<T?>)_values.AsMemory(0, rows), null, null, ct);
}

/// <summary>The same string in every row of a file.</summary>
internal sealed class ConstantStringColumn(string name) : Column(new DataField<string>(name, true))
{
    public string? Value { get; set; }

    public override Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct)
    {
        var def = scratch.DefinitionFor(rows);
        var values = scratch.DenseStrings;
        int count = 0;
        if (Value is null)
        {
            Array.Clear(def, 0, rows);
        }
        else
        {
            Array.Fill(def, 1, 0, rows);
            Array.Fill(values, Value.AsMemory(), 0, rows);
            count = rows;
        }
        return writer.WriteAllPartsAsync<ReadOnlyMemory<char>>(
            Field, (ReadOnlyMemory<ReadOnlyMemory<char>>)values.AsMemory(0, count), def.AsMemory(0, rows), null, ct);
    }
}

/// <summary>A nullable string per row, held as a code into the row group's <see cref="StringTable"/> (-1: null).</summary>
internal sealed class StringColumn(string name, int capacity, StringTable table) : Column(new DataField<string>(name, true))
{
    public readonly int[] Codes = new int[capacity];

    public override Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct)
    {
        // Explicit definition levels (1 present, 0 null) with only the present values: the nullable-value
        // overload writes a null string as an empty one.
        var codes = Codes;
        var def = scratch.DefinitionFor(rows);
        var values = scratch.DenseStrings;
        int count = 0;
        for (int i = 0; i < rows; i++)
        {
            int code = codes[i];
            if (code < 0)
            {
                def[i] = 0;
            }
            else
            {
                def[i] = 1;
                values[count++] = table[code];
            }
        }
        return writer.WriteAllPartsAsync<ReadOnlyMemory<char>>(
            Field, (ReadOnlyMemory<ReadOnlyMemory<char>>)values.AsMemory(0, count), def.AsMemory(0, rows), null, ct);
    }
}

/// <summary>
/// A nullable list of strings per row: <see cref="Counts"/>[row] = -1 for null, else that many codes appended to
/// <see cref="Items"/>. Lists are never empty, so null and empty need not be told apart.
/// </summary>
internal sealed class StringListColumn : Column
{
    private readonly StringTable _table;
    private readonly DataField _item;
    private int[] _items = new int[1024];

    public StringListColumn(string name, int capacity, StringTable table)
        : this(new DataField<string>("element", true), name, capacity, table)
    {
    }

    private StringListColumn(DataField item, string name, int capacity, StringTable table)
        : base(item)
    {
        _item = item;
        _table = table;
        List = new ListField(name, item);
        Counts = new int[capacity];
    }

    public ListField List { get; }

    public readonly int[] Counts;

    public int ItemCount { get; private set; }

    public void Append(int code)
    {
        if (ItemCount == _items.Length)
            Array.Resize(ref _items, _items.Length * 2);
        _items[ItemCount++] = code;
    }

    public void Reset() => ItemCount = 0;

    public override Task WriteAsync(ParquetRowGroupWriter writer, int rows, ColumnScratch scratch, CancellationToken ct)
    {
        // Dremel levels for an optional list of optional strings: definition 0 = null list, 3 = a present element;
        // repetition 0 starts a row, 1 continues its list.
        int slots = 0;
        for (int i = 0; i < rows; i++)
            slots += Counts[i] < 0 ? 1 : Counts[i];
        if (scratch.Definition.Length < slots)
            scratch.Definition = new int[slots];
        if (scratch.Repetition.Length < slots)
            scratch.Repetition = new int[slots];
        if (scratch.ListValues.Length < ItemCount)
            scratch.ListValues = new ReadOnlyMemory<char>[ItemCount];

        var def = scratch.Definition;
        var rep = scratch.Repetition;
        var values = scratch.ListValues;
        int slot = 0, item = 0;
        for (int i = 0; i < rows; i++)
        {
            int count = Counts[i];
            if (count < 0)
            {
                def[slot] = 0;
                rep[slot++] = 0;
                continue;
            }
            for (int k = 0; k < count; k++)
            {
                values[item] = _table[_items[item]];
                item++;
                def[slot] = 3;
                rep[slot++] = k == 0 ? 0 : 1;
            }
        }
        return writer.WriteAllPartsAsync<ReadOnlyMemory<char>>(
            _item, (ReadOnlyMemory<ReadOnlyMemory<char>>)values.AsMemory(0, item), def.AsMemory(0, slot), rep.AsMemory(0, slot), ct);
    }
}

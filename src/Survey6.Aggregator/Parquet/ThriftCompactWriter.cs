using System.Text;

namespace Survey6.Aggregator.Parquet;

/// <summary>
/// The subset of Thrift's compact protocol that Parquet's footer and page headers need: structs of integer,
/// binary, bool, struct and list fields. Field ids must be written in increasing order within a struct.
/// </summary>
internal sealed class ThriftCompactWriter(ByteBuffer output)
{
    private const byte TypeTrue = 1, TypeFalse = 2, TypeI16 = 4, TypeI32 = 5, TypeI64 = 6, TypeBinary = 8, TypeList = 9, TypeStruct = 12;

    private readonly Stack<short> _lastField = new();
    private short _last;

    public void BeginStruct()
    {
        _lastField.Push(_last);
        _last = 0;
    }

    public void EndStruct()
    {
        output.Byte(0);
        _last = _lastField.Pop();
    }

    public void I32(short id, int value)
    {
        Header(id, TypeI32);
        output.VarUInt(ZigZag(value));
    }

    public void I16(short id, short value)
    {
        Header(id, TypeI16);
        output.VarUInt(ZigZag(value));
    }

    public void I64(short id, long value)
    {
        Header(id, TypeI64);
        output.VarUInt(ZigZag(value));
    }

    public void Bool(short id, bool value) => Header(id, value ? TypeTrue : TypeFalse);

    public void Binary(short id, ReadOnlySpan<byte> value)
    {
        Header(id, TypeBinary);
        output.VarUInt((ulong)value.Length);
        output.Bytes(value);
    }

    public void String(short id, string value) => Binary(id, Encoding.UTF8.GetBytes(value));

    /// <summary>Starts a struct-valued field; close it with <see cref="EndStruct"/>.</summary>
    public void StructField(short id)
    {
        Header(id, TypeStruct);
        BeginStruct();
    }

    /// <summary>A list of structs; write each element with <see cref="BeginStruct"/>/<see cref="EndStruct"/>.</summary>
    public void StructListField(short id, int count)
    {
        Header(id, TypeList);
        ListHeader(count, TypeStruct);
    }

    public void I32ListField(short id, IReadOnlyList<int> values)
    {
        Header(id, TypeList);
        ListHeader(values.Count, TypeI32);
        foreach (var v in values)
            output.VarUInt(ZigZag(v));
    }

    public void StringListField(short id, IReadOnlyList<string> values)
    {
        Header(id, TypeList);
        ListHeader(values.Count, TypeBinary);
        foreach (var v in values)
        {
            var bytes = Encoding.UTF8.GetBytes(v);
            output.VarUInt((ulong)bytes.Length);
            output.Bytes(bytes);
        }
    }

    private void ListHeader(int count, byte elementType)
    {
        if (count < 15)
        {
            output.Byte((byte)((count << 4) | elementType));
        }
        else
        {
            output.Byte((byte)(0xF0 | elementType));
            output.VarUInt((ulong)count);
        }
    }

    private void Header(short id, byte type)
    {
        int delta = id - _last;
        if (delta is > 0 and <= 15)
        {
            output.Byte((byte)((delta << 4) | type));
        }
        else
        {
            output.Byte(type);
            output.VarUInt(ZigZag(id));
        }
        _last = id;
    }

    private static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));
}

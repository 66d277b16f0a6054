using System.Buffers;
using System.Text.Json;
using Survey6.Packets.Addresses;
using Survey6.Packets.Dissection;

namespace Survey6.Packets.Text;

/// <summary>Tab-separated survey6 records, one header line then one line per frame; absent fields are empty.</summary>
public sealed class TsvRecordWriter(Utf8LineWriter output)
{
    public void WriteHeader()
    {
        output.Write(string.Join('\t', RecordFields.Names).AsSpan());
        output.NewLine();
    }

    public void Write(in PacketRecord r)
    {
        var sink = new Sink(output);
        RecordFields.Visit(r, ref sink);
        output.NewLine();
    }

    private struct Sink(Utf8LineWriter w) : IRecordFieldSink
    {
        private bool _started;

        public void Number(string name, long value, bool present)
        {
            Separate();
            if (present)
            {
                w.WriteDecimal(value);
            }
        }

        public void Text(string name, ReadOnlySpan<char> value, bool present)
        {
            Separate();
            if (present)
            {
                w.Write(value);
            }
        }

        public void Address(string name, Ipv6Address value, bool present)
        {
            Separate();
            if (present)
            {
                w.WriteIpv6(value);
            }
        }

        public void Boolean(string name, bool value, bool present)
        {
            Separate();
            if (present)
            {
                w.Write(value ? "1"u8 : "0"u8);
            }
        }

        private void Separate()
        {
            if (_started)
            {
                w.Tab();
            }

            _started = true;
        }
    }
}

/// <summary>JSON Lines survey6 records: one object per frame, absent fields omitted.</summary>
public sealed class JsonLinesRecordWriter : IDisposable
{
    private readonly Utf8LineWriter _output;
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _json;

    public JsonLinesRecordWriter(Utf8LineWriter output)
    {
        _output = output;
        _json = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true });
    }

    public void Write(in PacketRecord r)
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        _json.WriteStartObject();
        var sink = new Sink(_json);
        RecordFields.Visit(r, ref sink);
        _json.WriteEndObject();
        _json.Flush();
        _output.Write(_buffer.WrittenSpan);
        _output.NewLine();
    }

    public void Dispose() => _json.Dispose();

    private readonly struct Sink(Utf8JsonWriter json) : IRecordFieldSink
    {
        public void Number(string name, long value, bool present)
        {
            if (present)
            {
                json.WriteNumber(name, value);
            }
        }

        public void Text(string name, ReadOnlySpan<char> value, bool present)
        {
            if (present)
            {
                json.WriteString(name, value);
            }
        }

        public void Address(string name, Ipv6Address value, bool present)
        {
            if (present)
            {
                Span<char> text = stackalloc char[46];
                json.WriteString(name, text[..value.Format(text)]);
            }
        }

        public void Boolean(string name, bool value, bool present)
        {
            if (present)
            {
                json.WriteBoolean(name, value);
            }
        }
    }
}

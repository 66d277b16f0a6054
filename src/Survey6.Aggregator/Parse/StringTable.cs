namespace Survey6.Aggregator.Parse;

/// <summary>
/// The strings of one row group: rows hold an int code, the text lives once here. Text made on the fly
/// (addresses, query names) is copied into pooled char chunks, so filling a row group allocates no strings.
/// </summary>
internal sealed class StringTable
{
    private const int ChunkSize = 64 * 1024;

    private readonly List<char[]> _chunks = [];
    private readonly Dictionary<string, int> _static = new(ReferenceEqualityComparer.Instance);
    private ReadOnlyMemory<char>[] _entries = new ReadOnlyMemory<char>[4096];
    private int _chunk;
    private int _used;

    public int Count { get; private set; }

    public ReadOnlyMemory<char> this[int code] => _entries[code];

    /// <summary>Adds text that outlives the table (names from static tables); nothing is copied.</summary>
    public int AddStatic(string text) => Append(text.AsMemory());

    /// <summary>The code of a string that outlives the table, added once per row group (looked up by reference).</summary>
    public int Static(string text)
    {
        ref int slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_static, text, out bool exists);
        if (!exists)
            slot = AddStatic(text);
        return slot;
    }

    /// <summary>Reserves room for up to <paramref name="maxLength"/> chars; finish with <see cref="Commit"/>.</summary>
    public Span<char> Reserve(int maxLength)
    {
        if (_chunks.Count == 0 || _chunks[_chunk].Length - _used < maxLength)
        {
            if (_chunks.Count > 0)
                _chunk++;
            if (_chunk == _chunks.Count)
                _chunks.Add(new char[Math.Max(ChunkSize, maxLength)]);
            else if (_chunks[_chunk].Length < maxLength)
                _chunks[_chunk] = new char[maxLength]; // not yet used in this row group, so nothing refers to it
            _used = 0;
        }
        return _chunks[_chunk].AsSpan(_used, maxLength);
    }

    /// <summary>Adds the first <paramref name="length"/> chars written into the last <see cref="Reserve"/>d span.</summary>
    public int Commit(int length)
    {
        var memory = new ReadOnlyMemory<char>(_chunks[_chunk], _used, length);
        _used += length;
        return Append(memory);
    }

    public int Add(ReadOnlySpan<char> text)
    {
        text.CopyTo(Reserve(text.Length));
        return Commit(text.Length);
    }

    /// <summary>Forgets every entry; the chunks are kept for the next row group.</summary>
    public void Clear()
    {
        Array.Clear(_entries, 0, Count);
        _static.Clear();
        Count = 0;
        _chunk = 0;
        _used = 0;
    }

    private int Append(ReadOnlyMemory<char> memory)
    {
        if (Count == _entries.Length)
            Array.Resize(ref _entries, _entries.Length * 2);
        _entries[Count] = memory;
        return Count++;
    }
}

namespace Survey6.Aggregator.Parquet;

/// <summary>
/// Dictionary indices for one INT32 column chunk at a time, in order of first use. Values below 2^20 (lengths,
/// ports, protocol numbers, flow labels) are looked up in a flat array, reset by generation rather than cleared;
/// larger ones in a hash map.
/// </summary>
internal sealed class ValueDictionary
{
    private const int DirectLimit = 1 << 20;

    private int[] _index = new int[256];
    private int[] _stamp = new int[256];
    private readonly Dictionary<uint, int> _large = [];
    private int _generation;

    public void Begin()
    {
        _generation++;
        _large.Clear();
    }

    public int IndexOf(uint value, ChunkBuilder chunk)
    {
        if (value < DirectLimit)
        {
            if (value >= _stamp.Length)
                GrowTo(value);
            if (_stamp[value] == _generation)
                return _index[value];
            _stamp[value] = _generation;
            return _index[value] = Add(value, chunk);
        }
        ref int slot = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_large, value, out bool exists);
        if (!exists)
            slot = Add(value, chunk);
        return slot;
    }

    private void GrowTo(uint value)
    {
        // Grown on demand: most columns hold small numbers, so most writers never need the full 2^20 entries.
        int size = (int)Math.Min(DirectLimit, System.Numerics.BitOperations.RoundUpToPowerOf2(value + 1));
        Array.Resize(ref _index, size);
        Array.Resize(ref _stamp, size);
    }

    private static int Add(uint value, ChunkBuilder chunk)
    {
        chunk.Dictionary.Int32(unchecked((int)value));
        return chunk.DictionaryCount++;
    }
}

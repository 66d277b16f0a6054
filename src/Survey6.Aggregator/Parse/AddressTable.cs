using System.Numerics;
using System.Runtime.CompilerServices;
using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Parse;

/// <summary>
/// Address to string codes for one row group: open addressing with linear probing over inline entries, so a
/// look-up costs one cache line where a Dictionary costs two. Looked up up to four times per packet.
/// </summary>
internal sealed class AddressTable
{
    private Entry[] _entries = new Entry[1 << 12];
    private int _count;

    public int Count => _count;

    /// <summary>The slot for <paramref name="address"/>; <paramref name="found"/> false means the caller must fill it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref Codes Find(Ipv6Address address, out bool found)
    {
        if (_count * 2 >= _entries.Length)
            Grow();
        var entries = _entries;
        int mask = entries.Length - 1;
        int i = Hash(address) & mask;
        while (true)
        {
            ref var e = ref entries[i];
            if (!e.Used)
            {
                e.Used = true;
                e.High = address.High;
                e.Low = address.Low;
                _count++;
                found = false;
                return ref e.Value;
            }
            if (e.High == address.High && e.Low == address.Low)
            {
                found = true;
                return ref e.Value;
            }
            i = (i + 1) & mask;
        }
    }

    public void Clear()
    {
        if (_count == 0)
            return;
        Array.Clear(_entries);
        _count = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Hash(Ipv6Address a)
    {
        // Interface identifiers carry most of the entropy; mix both halves so prefix-only differences spread too.
        ulong h = (a.Low ^ BitOperations.RotateLeft(a.High, 31)) * 0x9E3779B97F4A7C15UL;
        return (int)(h >> 32);
    }

    private void Grow()
    {
        var old = _entries;
        _entries = new Entry[old.Length * 2];
        _count = 0;
        foreach (var e in old)
        {
            if (e.Used)
            {
                ref var slot = ref Find(new Ipv6Address(e.High, e.Low), out _);
                slot = e.Value;
            }
        }
    }

    /// <summary>String codes of an address: its text, its type name, its IID class name (-1 for none).</summary>
    public record struct Codes(int Text, int Type, int Iid);

    private struct Entry
    {
        public ulong High;
        public ulong Low;
        public Codes Value;
        public bool Used;
    }
}

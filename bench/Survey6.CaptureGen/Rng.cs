using System.Buffers.Binary;
using System.Numerics;

namespace Survey6.CaptureGen;

/// <summary>
/// xoshiro256** seeded through SplitMix64. Owned here rather than System.Random so the byte stream of a
/// given seed cannot change with the runtime version.
/// </summary>
internal sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;

    public Rng(ulong seed)
    {
        var x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        var z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong Next()
    {
        var result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    public uint U32() => (uint)(Next() >> 32);

    public ushort U16() => (ushort)(Next() >> 48);

    public byte U8() => (byte)(Next() >> 56);

    /// <summary>Uniform in [0, n); the multiply-shift bias is far below anything a benchmark could notice.</summary>
    public int Below(int n) => (int)(((Next() >> 32) * (ulong)n) >> 32);

    public int Range(int low, int highInclusive) => low + Below(highInclusive - low + 1);

    public bool Chance(double p) => (Next() >> 11) * (1.0 / (1UL << 53)) < p;

    public T Pick<T>(T[] items) => items[Below(items.Length)];

    public void Fill(Span<byte> destination)
    {
        while (destination.Length >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination, Next());
            destination = destination[8..];
        }

        if (destination.Length > 0)
        {
            var last = Next();
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = (byte)(last >> (8 * i));
            }
        }
    }
}

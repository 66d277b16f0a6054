using System.Runtime.CompilerServices;

namespace Survey6.Aggregator.Parquet;

/// <summary>
/// Parquet's RLE / bit-packing hybrid encoding, for definition and repetition levels and dictionary indices.
/// Runs of eight or more equal values become RLE runs; everything between them is bit-packed in groups of eight.
/// </summary>
internal static class HybridEncoder
{
    private const int MaxGroupsPerRun = 63; // keeps the run header in one byte

    public static int BitWidth(int maxValue) => maxValue == 0 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)maxValue);

    public static void Encode(ReadOnlySpan<int> values, int bitWidth, ByteBuffer output)
    {
        int byteWidth = (bitWidth + 7) / 8;
        int n = values.Length, i = 0;
        while (i < n)
        {
            int run = RunLength(values, i, int.MaxValue);
            if (run >= 8)
            {
                output.VarUInt((ulong)run << 1);
                WriteRunValue(values[i], byteWidth, output);
                i += run;
                continue;
            }
            int start = i, groups = 0;
            do
            {
                groups++;
                i += 8;
            }
            while (i < n && groups < MaxGroupsPerRun && RunLength(values, i, 8) < 8);
            output.VarUInt(((ulong)groups << 1) | 1);
            BitPack(values, start, groups * 8, bitWidth, output);
            i = Math.Min(i, n);
        }
    }

    /// <summary>One RLE run of <paramref name="count"/> copies of <paramref name="value"/> (a whole column of one value).</summary>
    public static void EncodeRun(int value, int count, int bitWidth, ByteBuffer output)
    {
        if (count == 0)
            return;
        output.VarUInt((ulong)count << 1);
        WriteRunValue(value, (bitWidth + 7) / 8, output);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RunLength(ReadOnlySpan<int> values, int start, int limit)
    {
        // Vectorised: long runs (null stretches, repeated values) cost next to nothing.
        int end = (int)Math.Min((long)start + limit, values.Length);
        int other = values[start..end].IndexOfAnyExcept(values[start]);
        return other < 0 ? end - start : other;
    }

    /// <summary>
    /// Levels of bit width 1 (definition levels of a flat optional column) given as one 0/1 byte per value:
    /// the same encoding as <see cref="Encode"/>, eight values packed per byte with one multiply.
    /// </summary>
    public static void EncodeBits(ReadOnlySpan<byte> bits, ByteBuffer output)
    {
        int n = bits.Length, i = 0;
        while (i < n)
        {
            int other = bits[i..].IndexOfAnyExcept(bits[i]);
            int run = other < 0 ? n - i : other;
            if (run >= 8)
            {
                output.VarUInt((ulong)run << 1);
                output.Byte(bits[i]);
                i += run;
                continue;
            }
            int start = i, groups = 0;
            do
            {
                groups++;
                i += 8;
            }
            while (i + 8 <= n && groups < MaxGroupsPerRun && bits.Slice(i, 8).IndexOfAnyExcept(bits[i]) >= 0);
            output.VarUInt(((ulong)groups << 1) | 1);
            var span = output.Reserve(groups);
            for (int g = 0; g < groups; g++)
            {
                int at = start + (g * 8);
                ulong word = 0;
                if (at + 8 <= n)
                {
                    word = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(bits.Slice(at, 8));
                }
                else
                {
                    for (int k = 0; at + k < n; k++)
                        word |= (ulong)bits[at + k] << (8 * k);
                }
                // Gathers the low bit of each byte into one byte, byte 0 to bit 0.
                span[g] = (byte)((word * 0x0102040810204080UL) >> 56);
            }
            output.Advance(groups);
            i = Math.Min(i, n);
        }
    }

    private static void WriteRunValue(int value, int byteWidth, ByteBuffer output)
    {
        for (int b = 0; b < byteWidth; b++)
            output.Byte((byte)(value >> (8 * b)));
    }

    /// <summary>Packs <paramref name="count"/> values (a multiple of 8; past the end counts as 0) LSB first.</summary>
    private static void BitPack(ReadOnlySpan<int> values, int start, int count, int bitWidth, ByteBuffer output)
    {
        int bytes = count * bitWidth / 8;
        var span = output.Reserve(bytes);
        int at = 0;
        ulong acc = 0;
        int bits = 0;
        int end = Math.Min(start + count, values.Length);
        for (int k = start; k < start + count; k++)
        {
            ulong v = k < end ? (uint)values[k] : 0;
            acc |= v << bits;
            bits += bitWidth;
            while (bits >= 8)
            {
                span[at++] = (byte)acc;
                acc >>= 8;
                bits -= 8;
            }
        }
        output.Advance(bytes);
    }
}

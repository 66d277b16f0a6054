namespace Survey6.Aggregator.Parquet;

/// <summary>
/// Parquet's DELTA_BINARY_PACKED encoding for INT64 columns that mostly grow (timestamps, frame numbers): blocks of
/// 128 deltas in 4 miniblocks of 32, each miniblock bit-packed at the width its largest delta needs.
/// </summary>
internal static class DeltaEncoder
{
    private const int BlockSize = 128;
    private const int Miniblocks = 4;
    private const int MiniblockSize = BlockSize / Miniblocks;

    public static void Encode(ReadOnlySpan<long> values, ByteBuffer output)
    {
        output.VarUInt(BlockSize);
        output.VarUInt(Miniblocks);
        output.VarUInt((ulong)values.Length);
        output.VarUInt(ZigZag(values.Length > 0 ? values[0] : 0));
        Span<ulong> deltas = stackalloc ulong[BlockSize];
        Span<byte> widths = stackalloc byte[Miniblocks];
        for (int start = 1; start < values.Length; start += BlockSize)
        {
            int count = Math.Min(BlockSize, values.Length - start);
            long min = long.MaxValue;
            for (int k = 0; k < count; k++)
            {
                long delta = unchecked(values[start + k] - values[start + k - 1]);
                if (delta < min)
                    min = delta;
            }
            for (int k = 0; k < count; k++)
                deltas[k] = unchecked((ulong)(values[start + k] - values[start + k - 1] - min));
            output.VarUInt(ZigZag(min));
            int used = (count + MiniblockSize - 1) / MiniblockSize;
            for (int m = 0; m < Miniblocks; m++)
            {
                ulong max = 0;
                for (int k = m * MiniblockSize; k < Math.Min(count, (m + 1) * MiniblockSize); k++)
                    max |= deltas[k];
                widths[m] = m < used ? (byte)(64 - System.Numerics.BitOperations.LeadingZeroCount(max)) : (byte)0;
            }
            output.Bytes(widths);
            for (int m = 0; m < used; m++)
                Pack(deltas, m * MiniblockSize, count, widths[m], output);
        }
    }

    /// <summary>Packs one miniblock of 32 values LSB first; values past <paramref name="count"/> are zero padding.</summary>
    private static void Pack(ReadOnlySpan<ulong> deltas, int start, int count, int width, ByteBuffer output)
    {
        if (width == 0)
            return;
        int bytes = MiniblockSize * width / 8;
        var span = output.Reserve(bytes);
        int at = 0;
        UInt128 acc = 0;
        int bits = 0;
        for (int k = start; k < start + MiniblockSize; k++)
        {
            acc |= (UInt128)(k < count ? deltas[k] : 0) << bits;
            bits += width;
            while (bits >= 8)
            {
                span[at++] = (byte)acc;
                acc >>= 8;
                bits -= 8;
            }
        }
        output.Advance(bytes);
    }

    private static ulong ZigZag(long value) => (ulong)((value << 1) ^ (value >> 63));
}

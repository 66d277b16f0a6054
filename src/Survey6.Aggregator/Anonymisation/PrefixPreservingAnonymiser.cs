using System.Buffers.Binary;
using System.Security.Cryptography;
using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Anonymisation;

/// <summary>
/// Crypto-PAn (Xu, Fan, Ammar, Moon, ICNP 2002): prefix-preserving address anonymisation with AES-128 as the
/// pseudo-random function, over 32-bit IPv4 and, by the same construction, 128-bit IPv6. Two addresses that share
/// exactly their first k bits map to two addresses that share exactly their first k bits, the mapping is one-to-one,
/// and it depends only on the 32-byte key (16 bytes AES key, 16 bytes pad secret). The IPv4 results equal those of
/// the reference implementation.
/// </summary>
/// <remarks>
/// Bit i of the output is bit i of the input XOR the top bit of AES(first i input bits, then the pad's remaining
/// bits). The 32 or 128 blocks of one address do not depend on each other, so they go to AES as one ECB transform
/// of a reused buffer (the span one-shot <c>EncryptEcb</c> allocates per call): no allocation per address, and
/// nothing about an address outlives the call (the buffer is wiped). Thread-safe: calls take turns on the buffer.
/// </remarks>
public sealed class PrefixPreservingAnonymiser : IDisposable
{
    public const int KeyLength = 32;

    private readonly Aes _aes;
    private readonly ICryptoTransform _encryptor;
    private readonly UInt128 _pad;
    private readonly byte[] _blocks = new byte[128 * 16];
    private readonly Lock _lock = new();

    public PrefixPreservingAnonymiser(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyLength)
            throw new ArgumentException($"A Crypto-PAn key is {KeyLength} bytes (is {key.Length}).", nameof(key));
        _aes = Aes.Create();
        _aes.Key = key[..16].ToArray();
        Span<byte> pad = stackalloc byte[16];
        _aes.EncryptEcb(key[16..], pad, PaddingMode.None);
        _pad = BinaryPrimitives.ReadUInt128BigEndian(pad);
        CryptographicOperations.ZeroMemory(pad);
        _aes.Mode = CipherMode.ECB;
        _aes.Padding = PaddingMode.None;
        _encryptor = _aes.CreateEncryptor();
        KeyId = ComputeKeyId(key);
    }

    /// <summary>Names the key without revealing it: the first 8 bytes of its SHA-256, hex.</summary>
    public string KeyId { get; }

    public static string ComputeKeyId(ReadOnlySpan<byte> key)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(key, hash);
        return Convert.ToHexStringLower(hash[..8]);
    }

    public Ipv6Address Anonymise(Ipv6Address address)
    {
        var value = ((UInt128)address.High << 64) | address.Low;
        var result = Anonymise(value, 128);
        return new Ipv6Address((ulong)(result >> 64), (ulong)result);
    }

    /// <summary>An IPv4 address in host order (<c>a.b.c.d</c> is <c>a &lt;&lt; 24 | ...</c>).</summary>
    public uint AnonymiseIpv4(uint address) => (uint)(Anonymise((UInt128)address << 96, 32) >> 96);

    /// <summary>The anonymised IPv4 prefix of <paramref name="length"/> bits (0 to 32), bits after it zero.</summary>
    public uint AnonymiseIpv4Prefix(uint prefix, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, 32);
        if (length == 0)
            return 0;
        uint mask = uint.MaxValue << (32 - length);
        return (uint)(Anonymise((UInt128)(prefix & mask) << 96, length) >> 96) & mask;
    }

    /// <summary>
    /// The anonymised prefix of <paramref name="length"/> bits: the same as the first bits of every anonymised address
    /// inside it, bits after the prefix zero.
    /// </summary>
    public Ipv6Address AnonymisePrefix(Ipv6Address prefix, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, 128);
        if (length == 0)
            return default;
        var mask = UInt128.MaxValue << (128 - length);
        var value = (((UInt128)prefix.High << 64) | prefix.Low) & mask;
        // Output bit i depends only on input bits before it, so bits at and past the length need no AES calls.
        var result = Anonymise(value, length) & mask;
        return new Ipv6Address((ulong)(result >> 64), (ulong)result);
    }

    /// <summary>Anonymises the top <paramref name="bits"/> bits of <paramref name="value"/>; the rest pass unchanged.</summary>
    private UInt128 Anonymise(UInt128 value, int bits)
    {
        UInt128 flips = 0;
        lock (_lock)
        {
            var blocks = _blocks;
            int length = bits * 16;
            for (int i = 0; i < bits; i++)
            {
                var keep = i == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - i);
                BinaryPrimitives.WriteUInt128BigEndian(blocks.AsSpan(i * 16, 16), (value & keep) | (_pad & ~keep));
            }
            _encryptor.TransformBlock(blocks, 0, length, blocks, 0);
            for (int i = 0; i < bits; i++)
                flips |= (UInt128)(uint)(blocks[i * 16] >> 7) << (127 - i);
            CryptographicOperations.ZeroMemory(blocks.AsSpan(0, length));
        }
        return value ^ flips;
    }

    public void Dispose()
    {
        _encryptor.Dispose();
        _aes.Dispose();
    }
}

using BenchmarkDotNet.Attributes;
using Survey6.Packets.Addresses;

namespace Survey6.Benchmarks;

/// <summary>
/// Address parsing from packet bytes and RFC 5952 text: both run once or twice per packet in
/// dissection and in tshark-format output. Each invocation covers <see cref="Count"/> addresses so
/// results are per address and not dominated by call overhead.
/// </summary>
[MemoryDiagnoser]
public class Ipv6AddressBenchmarks
{
    private const int Count = 1024;

    private readonly char[] _text = new char[46];
    private Ipv6Address[] _addresses = [];
    private byte[] _bytes = [];

    [Params(AddressShape.RandomIid, AddressShape.LowByte, AddressShape.Mixed)]
    public AddressShape Shape { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _addresses = AddressSets.Create(Shape, Count);
        _bytes = AddressSets.ToBytes(_addresses);
    }

    [Benchmark(OperationsPerInvoke = Count)]
    public int Format()
    {
        // The summed length keeps the JIT from discarding the work.
        var total = 0;
        var text = _text.AsSpan();
        foreach (var address in _addresses)
        {
            total += address.Format(text);
        }

        return total;
    }

    [Benchmark(OperationsPerInvoke = Count)]
    public ulong Read()
    {
        ulong acc = 0;
        var bytes = _bytes.AsSpan();
        for (var offset = 0; offset < bytes.Length; offset += Ipv6Address.Length)
        {
            var address = Ipv6Address.Read(bytes[offset..]);
            acc ^= address.High ^ address.Low;
        }

        return acc;
    }
}

// Placeholder replaced by the DNS reader.
using Survey6.Packets.Addresses;
namespace Survey6.Packets.Dissection;
public enum DnsTransportKind : byte { None, Dns, Mdns, Llmnr }
public struct DnsInfo
{
    public const int MaxStoredAaaa = 16; public bool HeaderComplete; public bool IsResponse; public byte Rcode; public bool HasQuestion; public ushort QueryType; public int AaaaCount;
    public void Reset() { this = default; }
    public readonly Ipv6Address GetAaaa(int i) => default;
    public readonly int CopyQueryName(Span<char> dest) => 0;
}
public static class DnsReader { public static void Read(ReadOnlySpan<byte> message, ref DnsInfo info) { info.HeaderComplete = message.Length >= 12; } }

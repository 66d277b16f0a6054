namespace Survey6.Packets.Capture;

/// <summary>Container format of a capture file.</summary>
public enum CaptureFileFormat : byte
{
    Pcap = 0,
    Pcapng = 1,
}

/// <summary>Where and why reading a capture file stopped before its end.</summary>
public sealed record CaptureError(long Offset, string Message);

/// <summary>
/// Reads classic pcap and pcapng from a file or a stream through one pooled buffer: no allocation per packet.
/// Records are returned in file order; damage stops reading and is reported in <see cref="Error"/> after
/// every complete record before it has been returned.
/// </summary>
public sealed partial class CaptureReader
{
    // Implementation: CaptureReader.*.cs
}

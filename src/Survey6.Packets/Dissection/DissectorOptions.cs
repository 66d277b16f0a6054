namespace Survey6.Packets.Dissection;

/// <summary>Choices that change what <see cref="PacketDissector"/> recognises.</summary>
[Flags]
public enum DissectorOptions
{
    /// <summary>tshark 4.0's default preferences: Teredo only on UDP port 3544.</summary>
    None = 0,

    /// <summary>
    /// Teredo on any UDP port, recognised by its content: tshark's optional <c>teredo.heuristic_teredo</c>
    /// check, narrowed by Zeek's (an address in 2001::/32, or a bubble). Port 3544 is Teredo either way.
    /// </summary>
    TeredoOnAnyPort = 1 << 0,

    /// <summary>What datasets are built with: every option that finds IPv6 tshark's defaults would miss.</summary>
    Default = TeredoOnAnyPort,
}

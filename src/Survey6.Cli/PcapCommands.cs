using System.CommandLine;

namespace Survey6.Cli;

/// <summary><c>survey6 pcap ...</c>: read and dissect capture files.</summary>
public static class PcapCommands
{
    public static Command Create()
    {
        var pcap = new Command("pcap", "Read capture files (pcap, pcapng) and dissect their IPv6 traffic");
        return pcap;
    }
}

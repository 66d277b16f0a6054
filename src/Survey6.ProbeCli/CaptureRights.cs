using System.Globalization;

namespace Survey6.Cli;

/// <summary>
/// Whether this process may open capture handles: <c>CAP_NET_RAW</c> in its effective set (root has it). Checked by
/// <c>probe run</c> before it starts, so that a user without it gets one line rather than a daemon retrying forever.
/// </summary>
internal static class CaptureRights
{
    private const int NetRaw = 13; // linux/capability.h

    public static bool Held()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
            return line is null
                || (ulong.TryParse(line["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var effective)
                    && (effective & (1UL << NetRaw)) != 0);
        }
        catch (IOException)
        {
            return true; // no /proc: let libpcap say
        }
    }

    public static string Refusal(string commandLine) =>
        $"capturing needs CAP_NET_RAW and CAP_NET_ADMIN, which {Environment.UserName} lacks; start the service (`systemctl start survey6-probe`), " +
        $"run it as root, or grant them: `setpriv --inh-caps=+net_raw,+net_admin --ambient-caps=+net_raw,+net_admin {commandLine}` (as root)";
}

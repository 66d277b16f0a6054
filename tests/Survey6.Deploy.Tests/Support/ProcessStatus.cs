namespace Survey6.Deploy.Tests.Support;

/// <summary>The fields of /proc/PID/status that say who a process runs as and with which capabilities.</summary>
internal sealed record ProcessStatus(string Uid, string Gid, string CapEff, string CapPrm, string CapAmb, string CapBnd)
{
    /// <summary>CAP_NET_ADMIN (12) and CAP_NET_RAW (13): what capture needs.</summary>
    public const string CaptureCapabilities = "0000000000003000";

    public const string NoCapabilities = "0000000000000000";

    /// <summary>Parses the text of /proc/PID/status; Uid and Gid are the four ids (real, effective, saved, filesystem), tab-separated.</summary>
    public static ProcessStatus Parse(string text)
    {
        var fields = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(':', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1].Trim(), StringComparer.Ordinal);
        return new ProcessStatus(fields["Uid"], fields["Gid"], fields["CapEff"], fields["CapPrm"], fields["CapAmb"], fields["CapBnd"]);
    }

    public static ProcessStatus Of(int pid) => Parse(File.ReadAllText($"/proc/{pid}/status"));

    /// <summary>All four uids equal <paramref name="uid"/>: nothing left to switch back to.</summary>
    public bool RunsAs(int uid) => Uid.Split('\t', StringSplitOptions.RemoveEmptyEntries).All(u => u == uid.ToString(System.Globalization.CultureInfo.InvariantCulture));
}

namespace Survey6.Packets.Capture;

/// <summary>
/// What <see cref="PcapngWriter"/> puts in the Section Header Block. Null strings are omitted.
/// <see cref="Metadata"/> entries become <c>opt_comment</c> options of the form <c>survey6.&lt;key&gt;=&lt;value&gt;</c>
/// (see <see cref="PcapngMetadata"/> and docs/pcapng-metadata.md).
/// </summary>
public sealed record PcapngSectionInfo
{
    /// <summary>shb_hardware: CPU / machine description.</summary>
    public string? Hardware { get; init; }

    /// <summary>shb_os: operating system the capture ran on.</summary>
    public string? Os { get; init; }

    /// <summary>shb_userappl: application that wrote the file.</summary>
    public string? UserApplication { get; init; }

    /// <summary>
    /// Free-form opt_comment, written before the metadata comments. When null and <see cref="Metadata"/> is not
    /// empty, <see cref="PcapngMetadata.DefaultSectionComment"/> is written in its place (mergecap edits the first comment).
    /// </summary>
    public string? Comment { get; init; }

    /// <summary>survey6 metadata, written in order; keys are <see cref="PcapngMetadata"/> keys without the prefix.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Metadata { get; init; } = [];
}

/// <summary>
/// What <see cref="PcapngWriter.AddInterface(PcapngInterfaceInfo)"/> puts in an Interface Description Block.
/// Timestamps are always nanoseconds (if_tsresol = 9). Null strings are omitted.
/// </summary>
public sealed record PcapngInterfaceInfo(LinkType LinkType, uint SnapLength)
{
    /// <summary>if_name, e.g. <c>eth0</c>.</summary>
    public string? Name { get; init; }

    /// <summary>if_description.</summary>
    public string? Description { get; init; }

    /// <summary>if_filter as a libpcap filter string (filter type byte 0).</summary>
    public string? Filter { get; init; }

    /// <summary>if_os.</summary>
    public string? Os { get; init; }

    /// <summary>opt_comment on the IDB.</summary>
    public string? Comment { get; init; }
}

/// <summary>
/// Counters for an Interface Statistics Block. Every member is optional: null means "not known" and the
/// option is left out, which readers distinguish from a zero count.
/// </summary>
public sealed record PcapngInterfaceStatistics
{
    /// <summary>isb_starttime: start of the period the counters cover, ns since the Unix epoch.</summary>
    public long? StartTimeNanoseconds { get; init; }

    /// <summary>isb_endtime: end of the period the counters cover, ns since the Unix epoch.</summary>
    public long? EndTimeNanoseconds { get; init; }

    /// <summary>isb_ifrecv: packets received by the interface.</summary>
    public ulong? InterfaceReceived { get; init; }

    /// <summary>isb_ifdrop: packets dropped by the interface (lack of resources).</summary>
    public ulong? InterfaceDropped { get; init; }

    /// <summary>isb_filteraccept: packets accepted by the capture filter.</summary>
    public ulong? FilterAccepted { get; init; }

    /// <summary>isb_osdrop: packets dropped by the OS (e.g. full kernel buffer).</summary>
    public ulong? OsDropped { get; init; }

    /// <summary>isb_usrdeliv: packets delivered to the capturing application.</summary>
    public ulong? UserDelivered { get; init; }

    /// <summary>opt_comment on the ISB.</summary>
    public string? Comment { get; init; }
}

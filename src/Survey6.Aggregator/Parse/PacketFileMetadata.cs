namespace Survey6.Aggregator.Parse;

/// <summary>The capture-level values repeated in every row of a packets file.</summary>
public sealed record PacketFileMetadata
{
    public required string Sha256 { get; init; }

    public required string ProbeId { get; init; }

    public string? Labels { get; init; }

    public double? Latitude { get; init; }

    public double? Longitude { get; init; }

    public string? Country { get; init; }

    public string? City { get; init; }

    public long? WindowStartNs { get; init; }

    public long? WindowEndNs { get; init; }

    public long? InterfaceDropped { get; init; }

    public long? OsDropped { get; init; }
}

using Survey6.Data.Views;
using Survey6.Ingest;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;

namespace Survey6.Server.Web;

/// <summary>What the probe page shows below its actions; also served alone so the page can refresh it live.</summary>
public sealed record ProbeLive(
    DateTimeOffset Now,
    IReadOnlyList<ProbeHistoryMinute> History,
    IReadOnlyList<ProbeCommandInfo> Commands,
    IReadOnlyList<EventDto> Events,
    IReadOnlyList<UploadRecord> Uploads);

/// <summary>The new-token form as the admin filled it in, shown again when it is refused.</summary>
public sealed record TokenForm(string Ttl, string Uses, string Labels, string Description)
{
    public static readonly TokenForm Default = new("24h", "1", "", "");
}

/// <summary>Everything the data page shows: uploads, the ingest queue, and the aggregator's ledger and lake when this server can read them.</summary>
public sealed record DataView(
    UploadTotals Totals,
    IReadOnlyList<UploadRecord> Uploads,
    IngestQueueStats? Ingest,
    string? IngestError,
    bool LedgerReadable,
    PipelineView? Pipeline,
    bool LakeReadable,
    DatasetSummary? Dataset,
    string? DatasetError,
    DateTimeOffset Now);

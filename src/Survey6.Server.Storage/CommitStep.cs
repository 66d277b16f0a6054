namespace Survey6.Server.Storage;

/// <summary>Points in a commit after which a crash leaves a distinct state on disk; tests stop the process at each.</summary>
internal enum CommitStep
{
    PartSynced,
    Validated,
    ManifestWritten,
    Renamed,
    DirectoriesSynced,
    MetaRemoved,
    SinkReturned,
    Queued,
}

using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Survey6.Server.Uploads;

namespace Survey6.Cli;

/// <summary><c>survey6 server uploads</c>: what probes uploaded, from state.db.</summary>
public static partial class ServerCommands
{
    private static Command CreateUploads(Option<string> dataDir, Option<string> config)
    {
        var json = new Option<bool>("--json") { Description = "JSON (with window and stored path) instead of a table" };
        var limit = new Option<int>("--limit") { Description = "How many, newest first", DefaultValueFactory = _ => 50 };
        var probe = new Option<string>("--probe") { Description = "Only this probe's uploads" };
        var command = new Command("uploads", "List acknowledged uploads, newest first; duplicates are marked") { json, limit, probe };
        command.SetAction(parse => WithState(parse, "uploads", () =>
        {
            if (parse.GetValue(limit) < 1)
                return Fail(parse, "uploads", "--limit must be at least 1");
            var probeId = RequireProbe(parse, dataDir, config, parse.GetValue(probe));
            var uploads = new UploadRecords(OpenDatabase(parse, dataDir, config), TimeProvider.System).Recent(parse.GetValue(limit), probeId);
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                var array = new JsonArray(uploads.Select(u => (JsonNode)new JsonObject
                {
                    ["id"] = u.Id,
                    ["sha256"] = u.Sha256,
                    ["probe_id"] = u.ProbeId,
                    ["size_bytes"] = u.SizeBytes,
                    ["window_start"] = u.WindowStart.ToString("o"),
                    ["window_end"] = u.WindowEnd.ToString("o"),
                    ["received_at"] = u.ReceivedAt.ToString("o"),
                    ["duplicate"] = u.Duplicate,
                    ["stored_path"] = u.StoredPath,
                }).ToArray());
                output.WriteLine(array.ToJsonString(Indented));
                return 0;
            }

            WriteTable(output, ["RECEIVED", "PROBE", "SHA256", "SIZE", "WINDOW START", "DUPLICATE"], uploads.Select(u => new[]
            {
                u.ReceivedAt.ToString("u"), u.ProbeId, u.Sha256, u.SizeBytes.ToString(CultureInfo.InvariantCulture), u.WindowStart.ToString("u"), u.Duplicate ? "yes" : "no",
            }));
            return 0;
        }));
        return command;
    }
}

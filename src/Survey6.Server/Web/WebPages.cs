using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Survey6.Data.Views;
using Survey6.Ingest;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using Survey6.Server.Uploads;

using static Survey6.Server.Web.WebFormat;

namespace Survey6.Server.Web;

/// <summary>Server-rendered HTML of the web UI. Every value from state.db or a probe goes through <see cref="E"/>.</summary>
internal static class WebPages
{
    private static readonly (string Path, string Name)[] Navigation = [("/", "Fleet"), ("/map", "Map"), ("/tokens", "Tokens"), ("/data", "Data")];

    public static string E(string? value) => HtmlEncoder.Default.Encode(value ?? "");

    public static string Layout(string title, string body, AntiforgeryTokenSet? tokens = null, string current = "")
    {
        var header = new StringBuilder("<header><strong class=\"brand\">survey6</strong>");
        if (tokens is not null)
        {
            header.Append("<nav aria-label=\"Main\">");
            foreach (var (path, name) in Navigation)
                header.Append(path == current ? $"<a href=\"{path}\" aria-current=\"page\">{name}</a>" : $"<a href=\"{path}\">{name}</a>");
            header.Append(CultureInfo.InvariantCulture, $"</nav><form method=\"post\" action=\"/logout\">{Token(tokens)}<button type=\"submit\">Log out</button></form>");
        }

        header.Append("</header>");
        return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            + $"<title>{E(title)} - survey6</title>"
            + "<link rel=\"stylesheet\" href=\"/assets/site.css\"><script src=\"/assets/site.js\" defer></script></head>"
            + $"<body>{header}<main>{body}</main></body></html>";
    }

    public static string Token(AntiforgeryTokenSet tokens) =>
        $"<input type=\"hidden\" name=\"{E(tokens.FormFieldName)}\" value=\"{E(tokens.RequestToken)}\">";

    // ---- Data ----

    public static string Data(DataView view, AntiforgeryTokenSet tokens)
    {
        var t = view.Totals;
        var totals = "<dl class=\"figures\" id=\"upload-totals\">"
            + Figure("Captures stored", t.Captures.ToString("N0", CultureInfo.InvariantCulture), "captures")
            + Figure("Bytes stored", Bytes(t.Bytes), "bytes")
            + Figure("Last 24 h", t.CapturesLastDay.ToString("N0", CultureInfo.InvariantCulture), "last-day")
            + Figure("Duplicates", t.Duplicates.ToString("N0", CultureInfo.InvariantCulture), "duplicates")
            + Figure("Probes uploading", t.Probes.ToString("N0", CultureInfo.InvariantCulture), "probes")
            + Figure("Newest", t.Newest is { } n ? Age(view.Now - n) : "never", "newest")
            + "</dl>";
        var uploads = string.Concat(view.Uploads.Select(u =>
            $"<tr><td data-label=\"Received\">{E(Time(u.ReceivedAt))}</td><td data-label=\"Probe\"><a href=\"/probes/{E(u.ProbeId)}\">{E(u.ProbeId)}</a></td>"
            + $"<td data-label=\"Capture\" class=\"mono\" title=\"{E(u.Sha256)}\">{E(u.Sha256[..Math.Min(12, u.Sha256.Length)])}</td><td data-label=\"Size\" class=\"num\">{E(Bytes(u.SizeBytes))}</td>"
            + $"<td data-label=\"Window\">{E(Window(u.WindowStart, u.WindowEnd))}</td><td data-label=\"Note\">{(u.Duplicate ? "duplicate" : "")}</td></tr>"));

        var ingest = view.Ingest is { } q
            ? "<dl class=\"figures\" id=\"ingest\">" + Figure("Pending", q.Pending.ToString("N0", CultureInfo.InvariantCulture), "pending")
              + Figure("In flight", q.InFlight.ToString("N0", CultureInfo.InvariantCulture), "in-flight")
              + Figure("Dead-lettered", q.DeadLettered.ToString("N0", CultureInfo.InvariantCulture), "dead-lettered")
              + Figure("Oldest pending", q.OldestPendingAge is { } age ? Duration(age) : "none", "oldest") + "</dl>"
            : view.IngestError is { } error ? $"<p class=\"error\" id=\"ingest\">The ingest queue did not answer: {E(error)}</p>"
            : "<p class=\"muted\" id=\"ingest\">This server has no ingest queue configured.</p>";

        return Layout("Data", "<h1>Data</h1>"
            + "<section aria-labelledby=\"uploads-h\"><h2 id=\"uploads-h\">Uploads received</h2>" + totals
            + (view.Uploads.Count == 0 ? "<p class=\"muted\" id=\"no-uploads\">No captures received yet.</p>" : "")
            + "<div class=\"scroll\"><table id=\"uploads\" class=\"cards\"><thead><tr><th>Received</th><th>Probe</th><th>Capture</th><th class=\"num\">Size</th><th>Window</th><th></th></tr></thead>"
            + $"<tbody>{uploads}</tbody></table></div></section>"
            + "<section aria-labelledby=\"ingest-h\"><h2 id=\"ingest-h\">Ingest queue</h2>" + ingest + "</section>"
            + Pipeline(view.Pipeline, view.LedgerReadable)
            + Dataset(view.Dataset, view.DatasetError, view.Pipeline, view.LakeReadable), tokens, "/data");
    }

    private static string Pipeline(PipelineView? pipeline, bool readable)
    {
        if (!readable)
        {
            return "<section aria-labelledby=\"pipeline-h\"><h2 id=\"pipeline-h\">Pipeline</h2>"
                + "<p class=\"muted\" id=\"no-ledger-reader\">The aggregator's ledger is not available here: this server runs without the aggregator's code. <code>survey6 aggregate status</code> shows it.</p></section>";
        }

        if (pipeline is null)
        {
            return "<section aria-labelledby=\"pipeline-h\"><h2 id=\"pipeline-h\">Pipeline</h2>"
                + "<p class=\"muted\" id=\"no-aggregator\">No aggregator data yet: the aggregator has not run against this data directory.</p></section>";
        }

        var stages = string.Concat(pipeline.Stages.Select(s =>
            $"<tr id=\"stage-{E(s.Stage)}\"><td data-label=\"Stage\"><b>{E(s.Stage)}</b></td><td data-label=\"Last run\"><span class=\"status {E(s.Last.Status)}\">{E(s.Last.Status)}</span></td>"
            + $"<td data-label=\"Started\">{E(Time(s.Last.StartedAt))}</td><td data-label=\"Took\" class=\"num\">{(s.Last.Duration is { } d ? E(Duration(d)) : "")}</td>"
            + I($"<td data-label=\"In / out / rows\" class=\"num\">{s.Last.Inputs:N0} / {s.Last.Outputs:N0} / {s.Last.Rows:N0}</td>")
            + $"<td data-label=\"Runs\">{E(string.Join(", ", s.RunsByStatus.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => I($"{k.Value} {k.Key}"))))}</td>"
            + $"<td data-label=\"Error\" class=\"wrap\">{E(s.Last.Error)}</td></tr>"));
        var captures = string.Join(", ", pipeline.CapturesByStatus.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => I($"{k.Value:N0} {E(k.Key)}")));
        var problems = string.Concat(pipeline.Problems.Select(p =>
            $"<tr><td data-label=\"Capture\" class=\"mono\" title=\"{E(p.Sha256)}\">{E(p.Sha256[..Math.Min(12, p.Sha256.Length)])}</td><td data-label=\"Probe\">{E(p.ProbeId)}</td>"
            + $"<td data-label=\"Status\"><span class=\"status {E(p.Status)}\">{E(p.Status)}</span></td><td data-label=\"Attempts\" class=\"num\">{p.Attempts}</td>"
            + $"<td data-label=\"Reason\" class=\"wrap\">{E(p.Reason)}</td><td data-label=\"Updated\">{E(Time(p.UpdatedAt))}</td></tr>"));
        var failedRuns = string.Concat(pipeline.RecentRuns.Where(r => r.Status is "failed" or "abandoned").Select(r =>
            $"<li><b>{E(r.Stage)}</b> {E(Time(r.StartedAt))}: {E(r.Status)} {E(r.Error)}</li>"));
        return "<section aria-labelledby=\"pipeline-h\"><h2 id=\"pipeline-h\">Pipeline</h2>"
            + "<div class=\"scroll\"><table id=\"stages\" class=\"cards\"><thead><tr><th>Stage</th><th>Last run</th><th>Started</th><th class=\"num\">Took</th><th class=\"num\">In / out / rows</th><th>Runs</th><th>Error</th></tr></thead>"
            + $"<tbody>{stages}</tbody></table></div>"
            + $"<p id=\"capture-states\">Captures: {(captures.Length == 0 ? "none seen yet" : captures)}</p>"
            + (failedRuns.Length == 0 ? "" : $"<h3>Failed runs</h3><ul id=\"failed-runs\">{failedRuns}</ul>")
            + "<h3>Errors and quarantined captures</h3>"
            + (pipeline.Problems.Count == 0 ? "<p class=\"muted\" id=\"no-problems\">None.</p>"
                : $"<div class=\"scroll\"><table id=\"problems\" class=\"cards\"><thead><tr><th>Capture</th><th>Probe</th><th>Status</th><th class=\"num\">Attempts</th><th>Reason</th><th>Updated</th></tr></thead><tbody>{problems}</tbody></table></div>")
            + "</section>";
    }

    private static string Dataset(DatasetSummary? dataset, string? error, PipelineView? pipeline, bool readable)
    {
        var rows = dataset?.RowsPerTable ?? pipeline?.RowsPerTable;
        var body = new StringBuilder();
        if (!readable)
            body.Append("<p class=\"muted\" id=\"no-lake-reader\">The lake is not available here: this server runs without the aggregator's query engine. <code>survey6 query</code> reads it.</p>");
        if (rows is null || rows.Count == 0)
        {
            if (readable)
                body.Append("<p class=\"muted\" id=\"no-dataset\">No dataset yet: nothing has been parsed into the lake.</p>");
        }
        else
        {
            body.Append("<div><h3>Rows per table</h3><table id=\"rows-per-table\" class=\"compact\"><tbody>")
                .Append(string.Concat(rows.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => I($"<tr><th>{E(r.Key)}</th><td class=\"num\">{r.Value:N0}</td></tr>"))))
                .Append("</tbody></table></div>");
        }

        if (dataset is not null)
        {
            body.Append(Ranking("top-prefixes", "Top /48 prefixes", dataset.TopPrefixes))
                .Append(Ranking("iid-classes", "Interface identifier classes", dataset.IidClasses))
                .Append(Ranking("top-dns", "Top DNS names", dataset.TopDnsNames));
        }
        else if (error is not null)
        {
            body.Append(CultureInfo.InvariantCulture, $"<p class=\"error\" id=\"dataset-error\">The lake could not be read: {E(error)}</p>");
        }

        return "<section aria-labelledby=\"dataset-h\"><h2 id=\"dataset-h\">Dataset</h2><div class=\"blocks\">" + body + "</div></section>";
    }

    private static string Ranking(string id, string title, IReadOnlyList<KeyValuePair<string, long>> items)
    {
        if (items.Count == 0)
            return $"<div><h3>{title}</h3><p class=\"muted\" id=\"{id}\">None.</p></div>";
        var max = Math.Max(1, items.Max(i => i.Value));
        return $"<div><h3>{title}</h3><table id=\"{id}\" class=\"compact ranking\"><tbody>"
            + string.Concat(items.Select(i => I($"<tr><th class=\"mono\">{E(i.Key)}</th><td class=\"num\">{i.Value:N0}</td><td class=\"bar\"><svg viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect height=\"8\" width=\"{100.0 * i.Value / max:0.#}\"/></svg></td></tr>")))
            + "</tbody></table></div>";
    }

    private static string Figure(string label, string value, string id) =>
        $"<div><dt>{E(label)}</dt><dd id=\"fig-{id}\">{E(value)}</dd></div>";
}

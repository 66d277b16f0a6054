using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Survey6.Server.Control;
using Survey6.Server.Storage;

namespace Survey6.Server.Web;

/// <summary>Server-rendered HTML of the web UI. Every value from state.db or a probe goes through <see cref="E"/>.</summary>
internal static class WebPages
{
    private static readonly string[] StateOrder =
        [ProbeStates.Healthy, ProbeStates.Degraded, ProbeStates.Suspended, ProbeStates.Pending, ProbeStates.Offline, ProbeStates.Inactive, ProbeStates.Revoked];

    public static string E(string? value) => HtmlEncoder.Default.Encode(value ?? "");

    public static string Layout(string title, string body, AntiforgeryTokenSet? tokens = null)
    {
        var header = tokens is null
            ? "<header><strong>survey6</strong></header>"
            : $"<header><strong>survey6</strong><a href=\"/\">Fleet</a><form method=\"post\" action=\"/logout\">{Token(tokens)}<button type=\"submit\">Log out</button></form></header>";
        return $"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(title)} - survey6</title>"
            + "<link rel=\"stylesheet\" href=\"/assets/site.css\"><script src=\"/assets/site.js\" defer></script></head>"
            + $"<body>{header}<main>{body}</main></body></html>";
    }

    public static string Token(AntiforgeryTokenSet tokens) =>
        $"<input type=\"hidden\" name=\"{E(tokens.FormFieldName)}\" value=\"{E(tokens.RequestToken)}\">";

    public static string Login(AntiforgeryTokenSet tokens, string? returnUrl, string? error)
    {
        var message = error is null ? "" : $"<p class=\"error\" id=\"login-error\">{E(error)}</p>";
        return Layout("Log in", "<h1>Log in</h1>" + message
            + $"<form method=\"post\" action=\"/login\">{Token(tokens)}<input type=\"hidden\" name=\"returnUrl\" value=\"{E(returnUrl)}\">"
            + $"<p><label>User <input name=\"username\" id=\"username\" value=\"{WebAdminStore.UserName}\" autocomplete=\"username\" required></label></p>"
            + "<p><label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label></p>"
            + "<p><button type=\"submit\" id=\"login\">Log in</button></p></form>");
    }

    public static string Fleet(IReadOnlyList<ProbeHealth> probes, AntiforgeryTokenSet tokens)
    {
        var rows = new StringBuilder();
        foreach (var probe in probes.OrderBy(p => p.Hostname, StringComparer.Ordinal).ThenBy(p => p.ProbeId, StringComparer.Ordinal))
            rows.Append(Row(probe));
        return Layout("Fleet", $"<h1>Fleet</h1><p class=\"counts\" id=\"counts\">{Counts(probes)}</p>"
            + "<table id=\"fleet\"><thead><tr><th>Probe</th><th>Hostname</th><th>State</th><th>Last heartbeat</th><th>Labels</th><th>Version</th></tr></thead>"
            + $"<tbody>{rows}</tbody></table>", tokens);
    }

    public static string Counts(IReadOnlyList<ProbeHealth> probes)
    {
        var counts = probes.GroupBy(p => p.State).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"<span>total <b data-count=\"total\">{probes.Count}</b></span>");
        foreach (var state in StateOrder.Concat(counts.Keys.Except(StateOrder, StringComparer.Ordinal)))
            text.Append(CultureInfo.InvariantCulture, $"<span>{E(state)} <b data-count=\"{E(state)}\">{counts.GetValueOrDefault(state)}</b></span>");
        return text.ToString();
    }

    public static string Row(ProbeHealth probe)
    {
        var labels = string.Concat(probe.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"<span class=\"label\">{E(l.Key)}={E(l.Value)}</span>"));
        return $"<tr id=\"probe-{E(probe.ProbeId)}\"><td><a href=\"/probes/{E(probe.ProbeId)}\">{E(probe.ProbeId)}</a></td><td>{E(probe.Hostname)}</td>"
            + $"<td>{Badge(probe)}</td><td>{E(Age(probe.LastHeartbeatAge))}</td><td>{labels}</td><td>{E(probe.SoftwareVersion)}</td></tr>";
    }

    public static string Probe(ProbeHealth probe, IReadOnlyList<ProbeCommandInfo> commands, AntiforgeryTokenSet tokens, string? message)
    {
        var id = E(probe.ProbeId);
        var notice = message is null ? "" : $"<p id=\"notice\">{E(message)}</p>";
        var commandRows = string.Concat(commands.Select(c =>
            $"<tr><td>{E(c.Id)}</td><td>{E(c.Kind.ToString())}</td><td>{E(c.IssuedAt.ToString("u", CultureInfo.InvariantCulture))}</td><td>{E(c.IssuedBy)}</td><td>{E(c.Status)}</td><td>{E(c.ResultMessage)}</td></tr>"));
        var labels = string.Join(", ", probe.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => E(l.Key + "=" + l.Value)));
        return Layout(probe.ProbeId, $"<h1>{id}</h1>{notice}"
            + "<table class=\"details\">"
            + $"<tr><th>Hostname</th><td>{E(probe.Hostname)}</td></tr>"
            + $"<tr><th>State</th><td>{Badge(probe)}</td></tr>"
            + $"<tr><th>Last heartbeat</th><td>{E(Age(probe.LastHeartbeatAge))}</td></tr>"
            + $"<tr><th>Connected</th><td>{(probe.Connected == true ? "yes" : "no")}</td></tr>"
            + $"<tr><th>Version</th><td>{E(probe.SoftwareVersion)}</td></tr>"
            + $"<tr><th>Labels</th><td>{labels}</td></tr>"
            + $"<tr><th>Joined</th><td>{E(probe.JoinedAt.ToString("u", CultureInfo.InvariantCulture))}</td></tr>"
            + "</table>"
            + $"<p><form method=\"post\" action=\"/probes/{id}/suspend\" data-confirm=\"Suspend capture on {id}?\">{Token(tokens)}<button type=\"submit\" id=\"suspend\">Suspend</button></form></p>"
            + $"<p><form method=\"post\" action=\"/probes/{id}/resume\" data-confirm=\"Resume capture on {id}?\">{Token(tokens)}<button type=\"submit\" id=\"resume\">Resume</button></form></p>"
            + "<h2>Commands</h2><table id=\"commands\"><thead><tr><th>Id</th><th>Kind</th><th>Issued</th><th>By</th><th>Status</th><th>Result</th></tr></thead>"
            + $"<tbody>{commandRows}</tbody></table>", tokens);
    }

    public static string Message(string title, string text) => Layout(title, $"<h1>{E(title)}</h1><p>{E(text)}</p>");

    private static string Badge(ProbeHealth probe)
    {
        var reasons = probe.Reasons.Count == 0 ? "" : $"<div class=\"reasons\">{E(string.Join("; ", probe.Reasons.Select(r => r.ToString())))}</div>";
        return $"<span class=\"badge {E(probe.State)}\">{E(probe.State)}</span>{reasons}";
    }

    private static string Age(TimeSpan? age)
    {
        if (age is not { } a)
            return "never";
        if (a < TimeSpan.Zero)
            a = TimeSpan.Zero;
        var text = a.TotalSeconds < 60 ? $"{(int)a.TotalSeconds}s"
            : a.TotalMinutes < 60 ? $"{(int)a.TotalMinutes}m"
            : a.TotalHours < 48 ? $"{(int)a.TotalHours}h"
            : $"{(int)a.TotalDays}d";
        return text + " ago";
    }
}

using Microsoft.Playwright;
using Survey6.Contracts.V1;
using Survey6.Server.Storage;
using Survey6.Testing;
using static Microsoft.Playwright.Assertions;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// A probe names itself and its labels: a script tag and quotes there reach the pages rendered from Razor
/// components as text the admin can read, never as an element, in the first rendering and in live updates; so does
/// an admin's text in a join token's form.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Browser)]
public sealed class ProbeTextInBrowserTests
{
    private const string Hostile = "<script>alert(1)</script>\"' onmouseover=\"alert(2)";

    [Fact]
    public async Task A_script_tag_and_quotes_in_a_probes_name_and_label_are_shown_as_text_on_the_fleet_map_and_probe_pages()
    {
        await using var ui = await WebUi.StartAsync();
        var token = ui.Server.CreateToken(labels: new Dictionary<string, string> { ["site"] = Hostile });
        var (response, certificate) = await ui.Server.JoinAsync(token, new HostFacts { Hostname = Hostile });
        using var _ = certificate;
        var id = response.ProbeId;
        var dialogs = new List<string>();
        ui.Page.Dialog += (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            _ = dialog.DismissAsync();
        };
        await ui.LoginAsync();

        // Fleet: the name and the label read as written; the page holds one script (site.js) and no handler attribute.
        var row = ui.Page.Locator("#probe-" + id);
        await Expect(row.Locator("td[data-label=Probe] a")).ToHaveTextAsync(Hostile);
        await Expect(row.Locator(".label")).ToHaveTextAsync("site=" + Hostile);
        await Expect(ui.Page.Locator("#filter-label option").Last).ToHaveTextAsync("site=" + Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);

        // A live update re-renders the row from the same component.
        await Expect(ui.Page.Locator("body[data-live='1']")).ToHaveCountAsync(1);
        await using (var stream = ProbeStream.Open(ui.Server, certificate))
        {
            await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server));
            await Expect(row.Locator(".badge")).ToHaveTextAsync(ProbeStates.Healthy);
        }

        await Expect(row.Locator("td[data-label=Probe] a")).ToHaveTextAsync(Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);

        // Map: a probe without a place is listed by name under the map.
        await ui.Page.GotoAsync(ui.Url("/map"));
        await Expect(ui.Page.Locator("#unplaced a")).ToHaveTextAsync(Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);

        // Probe page: the name under the heading and the label in the live part, first rendered with the page and then
        // fetched again alone when the probe changes.
        await ui.Page.GotoAsync(ui.Url("/probes/" + id));
        await Expect(ui.Page.Locator("p.subtitle")).ToHaveTextAsync(Hostile);
        await Expect(ui.Page.Locator("#details .label")).ToHaveTextAsync("site=" + Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);
        await Expect(ui.Page.Locator("body[data-live='1']")).ToHaveCountAsync(1);
        await using (var stream = ProbeStream.Open(ui.Server, certificate))
        {
            await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server));
            await Expect(ui.Page.Locator("#live[data-refreshed] #details .badge")).ToHaveTextAsync(ProbeStates.Healthy);
        }

        await Expect(ui.Page.Locator("#details .label")).ToHaveTextAsync("site=" + Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);

        // Searching for the text finds the probe, and the search box shows it back as typed.
        await ui.Page.GotoAsync(ui.Url("/?q=" + Uri.EscapeDataString("<script>")));
        await Expect(ui.Page.Locator("#filter-q")).ToHaveValueAsync("<script>");
        await Expect(ui.Page.Locator("#fleet tbody tr")).ToHaveCountAsync(1);
        await AssertNoInjectedMarkupAsync(ui.Page);
        Assert.Empty(dialogs);
    }

    [Fact]
    public async Task A_script_tag_and_quotes_in_a_tokens_description_and_a_refused_form_are_shown_as_text_on_the_tokens_page()
    {
        await using var ui = await WebUi.StartAsync();
        var dialogs = new List<string>();
        ui.Page.Dialog += (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            _ = dialog.DismissAsync();
        };
        await ui.LoginAsync();
        await ui.Page.GotoAsync(ui.Url("/tokens"));

        // Created: the description reads as written in the list.
        await ui.Page.FillAsync("#token-description", Hostile);
        await ui.Page.ClickAsync("#create-token");
        await Expect(ui.Page.Locator("#created")).ToBeVisibleAsync();
        await Expect(ui.Page.Locator("#tokens td[data-label=Description]")).ToHaveTextAsync(Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);

        // Refused: the form comes back with the text as typed, and the reasons name the fields.
        await ui.Page.FillAsync("#token-ttl", Hostile);
        await ui.Page.FillAsync("#token-labels", Hostile);
        await ui.Page.FillAsync("#token-description", Hostile);
        await ui.Page.ClickAsync("#create-token");
        await Expect(ui.Page.Locator("#token-errors")).ToContainTextAsync("ttl");
        await Expect(ui.Page.Locator("#token-ttl")).ToHaveValueAsync(Hostile);
        await Expect(ui.Page.Locator("#token-labels")).ToHaveValueAsync(Hostile);
        await Expect(ui.Page.Locator("#token-description")).ToHaveValueAsync(Hostile);
        await AssertNoInjectedMarkupAsync(ui.Page);
        Assert.Empty(dialogs);
    }

    private static async Task AssertNoInjectedMarkupAsync(IPage page)
    {
        Assert.Equal(["/assets/site.js"], await page.EvaluateAsync<string[]>(
            "() => Array.from(document.scripts).map(s => s.getAttribute('src') || 'inline: ' + s.textContent)"));
        Assert.Equal(0, await page.EvaluateAsync<int>("() => document.querySelectorAll('[onmouseover]').length"));
    }
}

using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Playwright;
using Survey6.Aggregator.Ledger;
using Survey6.Aggregator.Sources;
using Survey6.Cli;
using Survey6.Contracts.V1;
using Location = Survey6.Contracts.V1.Location;
using Survey6.Server.Control;
using Survey6.Server.Storage;
using static Microsoft.Playwright.Assertions;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>The map, probe, tokens and data pages against a real server, with probes that really joined and uploaded.</summary>
[Trait(TestCategory.Name, TestCategory.Browser)]
public sealed partial class WebPagesTests
{
    [Fact]
    public async Task A_token_created_in_the_tokens_page_yields_a_join_command_that_enrols_a_probe()
    {
        await using var ui = await WebUi.StartAsync();
        await ui.LoginAsync();
        await ui.Page.ClickAsync("nav >> text=Tokens");
        await Expect(ui.Page.Locator("h1")).ToHaveTextAsync("Join tokens");

        await ui.Page.FillAsync("#token-ttl", "2h");
        await ui.Page.FillAsync("#token-uses", "2");
        await ui.Page.FillAsync("#token-labels", "site=ams\nrole=edge");
        await ui.Page.FillAsync("#token-description", "rack 4");
        await ui.Page.ClickAsync("#create-token");

        var command = (await ui.Page.Locator("#join-command").TextContentAsync())!.Trim();
        Assert.StartsWith("survey6 probe join --server https://127.0.0.1:", command, StringComparison.Ordinal);
        var info = Assert.Single(ui.Server.Tokens.List());
        Assert.Equal("rack 4", info.Description);
        Assert.Equal(2, info.MaxUses);
        Assert.Equal("ams", info.Labels["site"]);
        Assert.Equal(TimeSpan.FromHours(2), info.ExpiresAt - info.CreatedAt);
        await Expect(ui.Page.Locator($"#token-{info.Id}")).ToContainTextAsync("0 / 2");
        await Shoot(ui.Page, ScreenshotDirectory(), "laptop", "tokens-created", 1280, "Join tokens", "#created");

        // The copy button puts exactly the command on the clipboard.
        await ui.Browser.GrantPermissionsAsync(["clipboard-read", "clipboard-write"], new() { Origin = ui.Url("/").TrimEnd('/') });
        await ui.Page.ClickAsync("#copy");
        await Expect(ui.Page.Locator("#copy-status")).ToHaveTextAsync("Copied.");
        Assert.Equal(command, await ui.Page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));

        // The command as shown, run by the survey6 program's own join code, with a state folder of our own.
        var stateDir = Path.Combine(ui.Server.Root, "probe-from-ui");
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["survey6", "probe", "join"], words[..3]);
        var output = new StringWriter();
        var status = await RootCommandFactory.Create().Parse([.. words[1..], "--state-dir", stateDir])
            .InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = output }, CancellationToken.None);
        Assert.True(status == 0, output.ToString());
        var probeId = new Survey6.Probe.Join.ProbeStateDirectory(stateDir).ReadProbeId();
        var probe = ui.Server.Probes.Get(probeId!)!;
        Assert.Equal("ams", probe.Labels["site"]);
        Assert.Equal("edge", probe.Labels["role"]);

        await ui.Page.GotoAsync(ui.Url("/tokens"));
        await Expect(ui.Page.Locator($"#token-{info.Id}")).ToContainTextAsync("1 / 2");
        await ui.Page.GotoAsync(ui.Url("/"));
        await Expect(ui.Page.Locator($"#probe-{probeId}")).ToContainTextAsync("site=ams");

        // Revoke, confirmed.
        await ui.Page.GotoAsync(ui.Url("/tokens"));
        var dialogs = AcceptDialogs(ui.Page);
        await ui.Page.ClickAsync($"#token-{info.Id} button");
        await Expect(ui.Page.Locator("#notice")).ToContainTextAsync($"token {info.Id} revoked");
        await Expect(ui.Page.Locator($"#token-{info.Id}")).ToContainTextAsync("revoked");
        Assert.Contains(dialogs, d => d.Contains("Revoke join token", StringComparison.Ordinal));
        Assert.NotNull(ui.Server.Tokens.List().Single().RevokedAt);
    }

    [Fact]
    public async Task A_bad_token_form_is_refused_with_its_reasons_and_creates_nothing()
    {
        await using var ui = await WebUi.StartAsync();
        await ui.LoginAsync();
        await ui.Page.GotoAsync(ui.Url("/tokens"));
        await ui.Page.FillAsync("#token-ttl", "soon");
        await ui.Page.FillAsync("#token-labels", "no-equals-sign");
        await ui.Page.ClickAsync("#create-token");
        await Expect(ui.Page.Locator("#token-errors")).ToContainTextAsync("ttl");
        await Expect(ui.Page.Locator("#token-errors")).ToContainTextAsync("no-equals-sign");
        await Expect(ui.Page.Locator("#token-ttl")).ToHaveValueAsync("soon"); // the input is kept
        Assert.Empty(ui.Server.Tokens.List());
    }

    [Fact]
    public async Task Probe_page_charts_the_history_and_its_confirmed_actions_reach_the_probe()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, certificate) = await JoinAsync(ui, "edge-1", Amsterdam);
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await HeartbeatsAsync(ui.Server, stream, minutes: 8);

        await ui.LoginAsync();
        await ui.Page.GotoAsync(ui.Url("/probes/" + probeId));
        await Expect(ui.Page.Locator("h1")).ToHaveTextAsync(probeId);
        foreach (var chart in new[] { "#chart-rate", "#chart-drops", "#chart-spool" })
        {
            var points = await ui.Page.Locator(chart + " polyline").GetAttributeAsync("points");
            Assert.Equal(9, points!.Split(' ').Length); // eight minutes and the current one
        }

        await Expect(ui.Page.Locator("#chart-rate figcaption")).ToContainTextAsync("100 pkt/s");

        // The same history through the JSON API, with the page's session.
        var api = await ui.Page.APIRequest.GetAsync(ui.Url($"/api/v1/probes/{probeId}/minutes"));
        Assert.Equal(200, api.Status);
        using (var json = System.Text.Json.JsonDocument.Parse(await api.TextAsync()))
        {
            var items = json.RootElement.GetProperty("items");
            Assert.Equal(9, items.GetArrayLength());
            Assert.Equal(6000, items[1].GetProperty("received").GetInt64());
            Assert.Equal(6, items[1].GetProperty("heartbeats").GetInt32());
            // Minutes are the server's clock minutes, not the loop's: sums over all of them are what is known.
            Assert.Equal(6 * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7), items.EnumerateArray().Sum(m => m.GetProperty("kernel_dropped").GetInt64()));
            Assert.Equal(160L << 20, items.EnumerateArray().Max(m => m.GetProperty("spool_bytes_max").GetInt64()));
        }

        Assert.Equal(404, (await ui.Page.APIRequest.GetAsync(ui.Url("/api/v1/probes/p-nothere/minutes"))).Status);
        await Expect(ui.Page.Locator("#details")).ToContainTextAsync("Amsterdam, NL");
        await Expect(ui.Page.Locator("#events")).ToContainTextAsync("probe joined");

        var dialogs = AcceptDialogs(ui.Page);
        await ui.Page.EvaluateAsync("() => { window.notReloaded = true; }");
        await ui.Page.ClickAsync("#upload-now");
        var command = await stream.NextCommandAsync();
        Assert.Equal(CommandKind.UploadNow, command.Kind);
        Assert.Contains(dialogs, d => d.Contains("upload its spool now", StringComparison.Ordinal));
        await Expect(ui.Page.Locator("#notice")).ToContainTextAsync("upload now issued as " + command.Id);

        // The probe's answer shows up without a reload.
        await ui.Page.EvaluateAsync("() => { window.notReloaded = true; }");
        await stream.AnswerAsync(command.Id, true, "uploaded 3 files");
        await Expect(ui.Page.Locator("#commands")).ToContainTextAsync("uploaded 3 files");
        Assert.True(await ui.Page.EvaluateAsync<bool>("() => window.notReloaded === true"));

        await ui.Page.FillAsync("#revoke-reason", "stolen laptop");
        await ui.Page.ClickAsync("#revoke");
        Assert.Contains(dialogs, d => d.StartsWith("Revoke " + probeId, StringComparison.Ordinal));
        await Expect(ui.Page.Locator("#notice")).ToContainTextAsync("revoked");
        await Expect(ui.Page.Locator("#details .badge")).ToHaveTextAsync(ProbeStates.Revoked);
        // Observed through the protocol: the server closes the probe's control stream and refuses its certificate.
        await stream.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        await using var again = ProbeStream.Open(ui.Server, certificate);
        Assert.NotNull(await again.Ended.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(ProbeStates.Revoked, ui.Server.Probes.Get(probeId)!.State);
        Assert.Contains(ui.Server.Events.Recent(20), e => e.Kind == EventKinds.ProbeRevoked && e.Detail.Contains("stolen laptop", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Map_shows_a_marker_per_located_probe_coloured_by_state_and_linking_to_it()
    {
        await using var ui = await WebUi.StartAsync();
        var (amsterdam, certificate) = await JoinAsync(ui, "ams-1", Amsterdam);
        var (tokyo, _) = await JoinAsync(ui, "tyo-1", new Location { Latitude = 35.68, Longitude = 139.69, Country = "JP", City = "Tokyo" });
        var (saoPaulo, _) = await JoinAsync(ui, "gru-1", new Location { Latitude = -23.55, Longitude = -46.63, Country = "BR", City = "Sao Paulo" });
        var (nowhere, _) = await JoinAsync(ui, "nowhere", null);
        await ui.LoginAsync();
        await ui.Page.ClickAsync("nav >> text=Map");
        await Expect(ui.Page.Locator("#markers circle.marker")).ToHaveCountAsync(3);
        await Expect(ui.Page.Locator("#marker-" + amsterdam)).ToHaveClassAsync("marker pending");
        await Expect(ui.Page.Locator("#marker-" + tokyo)).ToHaveClassAsync("marker pending");
        await Expect(ui.Page.Locator("#unplaced")).ToContainTextAsync("nowhere");

        // Equirectangular on a 1000 x 500 view box.
        Assert.Equal(513.6, double.Parse((await ui.Page.Locator("#marker-" + amsterdam).GetAttributeAsync("cx"))!, CultureInfo.InvariantCulture), 1);
        Assert.Equal(104.5, double.Parse((await ui.Page.Locator("#marker-" + amsterdam).GetAttributeAsync("cy"))!, CultureInfo.InvariantCulture), 1);
        Assert.Equal(315.4, double.Parse((await ui.Page.Locator("#marker-" + saoPaulo).GetAttributeAsync("cy"))!, CultureInfo.InvariantCulture), 1);

        // The land is drawn from the bundled shapes, and the Netherlands lies under the Amsterdam marker.
        await Expect(ui.Page.Locator("#map[data-drawn]")).ToHaveCountAsync(1);
        Assert.True(await ui.Page.Locator("#land path").CountAsync() > 150);
        var under = await ui.Page.EvaluateAsync<string>(
            "id => { const m = document.getElementById('marker-' + id).getBoundingClientRect(); " +
            "const hidden = document.getElementById('markers'); hidden.style.display = 'none';" +
            "const el = document.elementFromPoint(m.x + m.width / 2, m.y + m.height / 2); hidden.style.display = '';" +
            "return el && el.querySelector('title') ? el.querySelector('title').textContent : (el ? el.tagName : ''); }", amsterdam);
        Assert.Equal("Netherlands", under);

        // Colours follow the state live.
        await Expect(ui.Page.Locator("body[data-live='1']")).ToHaveCountAsync(1);
        await ui.Page.EvaluateAsync("() => { window.notReloaded = true; }");
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server));
        await Expect(ui.Page.Locator("#marker-" + amsterdam)).ToHaveClassAsync("marker healthy");
        Assert.True(await ui.Page.EvaluateAsync<bool>("() => window.notReloaded === true"));

        await ui.Page.ClickAsync($"#markers a[href='/probes/{tokyo}']", new() { Force = true });
        await Expect(ui.Page.Locator("h1")).ToHaveTextAsync(tokyo);
        Assert.NotEqual(nowhere, tokyo);
    }

    [Fact]
    public async Task Data_page_shows_real_uploads_and_then_the_aggregator_ledger()
    {
        await using var ui = await WebUi.StartAsync();
        var shas = await UploadAsync(ui, "uploader", 2);

        await ui.LoginAsync();
        await ui.Page.ClickAsync("nav >> text=Data");
        await Expect(ui.Page.Locator("#fig-captures")).ToHaveTextAsync("2");
        await Expect(ui.Page.Locator("#uploads tbody tr")).ToHaveCountAsync(2);
        foreach (var sha in shas)
            await Expect(ui.Page.Locator("#uploads")).ToContainTextAsync(sha[..12]);
        await Expect(ui.Page.Locator("#ingest")).ToContainTextAsync("Pending");
        await Expect(ui.Page.Locator("#no-aggregator")).ToBeVisibleAsync();
        await Expect(ui.Page.Locator("#no-dataset")).ToBeVisibleAsync();

        WriteLedger(ui.Server, shas[0]);
        await ui.Page.ReloadAsync();
        await Expect(ui.Page.Locator("#stage-parse")).ToContainTextAsync("succeeded");
        await Expect(ui.Page.Locator("#stage-aggregate")).ToContainTextAsync("failed");
        await Expect(ui.Page.Locator("#stage-aggregate")).ToContainTextAsync("disk full");
        await Expect(ui.Page.Locator("#problems")).ToContainTextAsync("quarantined");
        await Expect(ui.Page.Locator("#problems")).ToContainTextAsync(shas[0][..12]);
        await Expect(ui.Page.Locator("#rows-per-table")).ToContainTextAsync("1,234");
        await Expect(ui.Page.Locator("#no-aggregator")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Data_page_summarises_the_lake_the_aggregator_built_from_a_real_upload()
    {
        await using var ui = await WebUi.StartAsync();
        await UploadRealCaptureAndAggregateAsync(ui);

        await ui.LoginAsync();
        await ui.Page.GotoAsync(ui.Url("/data"));
        await Expect(ui.Page.Locator("#stage-parse")).ToContainTextAsync("succeeded");
        var error = ui.Page.Locator("#dataset-error");
        Assert.True(await error.CountAsync() == 0, await error.CountAsync() == 0 ? "" : await error.TextContentAsync());
        await Expect(ui.Page.Locator("#rows-per-table")).ToContainTextAsync("packets");
        await Expect(ui.Page.Locator("#top-dns")).ToContainTextAsync("n1.netalyzr.icsi.berkeley.edu");
        await Expect(ui.Page.Locator("#top-prefixes")).ToContainTextAsync("2001:470:1f11::/48");
        await Expect(ui.Page.Locator("#iid-classes tr").First).ToBeVisibleAsync();
        await Expect(ui.Page.Locator("#dataset-error")).ToHaveCountAsync(0);
    }

    /// <summary>Uploads a real IPv6 DNS capture with the probe's own code, then runs the aggregator's own command against the server's data folder.</summary>
    private static async Task UploadRealCaptureAndAggregateAsync(WebUi ui)
    {
        var capture = Path.Combine(SharedTestData(), "pcaps", "zeek", "ipv6-fragmented-dns.pcap");
        var token = ui.Server.CreateToken();
        using (var connection = await UploadTestSupport.JoinAsync(ui.Server.GrpcUrl, token, ui.Server.Pki.Authority.Pin, Path.Combine(ui.Server.Root, "dns-probe")))
        {
            var result = await UploadTestSupport.Uploader(connection).UploadAsync(capture, UploadTestSupport.Manifest(capture));
            Assert.NotNull(result);
        }

        var output = new StringWriter();
        var status = await RootCommandFactory.Create().Parse(["aggregate", "once", "--data-dir", ui.Server.DataDirectory, "--include-open"])
            .InvokeAsync(new System.CommandLine.InvocationConfiguration { Output = output, Error = output }, CancellationToken.None);
        Assert.True(status == 0, output.ToString());
    }

    /// <summary>The shared capture corpus, <c>shared/testdata</c> beside the repository folder.</summary>
    private static string SharedTestData()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "shared", "testdata");
            if (Directory.Exists(Path.Combine(candidate, "pcaps")))
                return candidate;
        }

        Assert.Fail("shared/testdata (the capture corpus beside the repository) was not found");
        return "";
    }

    [Fact]
    public async Task Fleet_page_filters_by_state_label_and_search_in_place()
    {
        await using var ui = await WebUi.StartAsync();
        var (healthy, certificate) = await JoinAsync(ui, "alpha", Amsterdam, "site=ams");
        await JoinAsync(ui, "beta", null, "site=fra");
        await JoinAsync(ui, "gamma", null, "site=fra");
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server, received: 1000));
        ui.Server.Time.Advance(TimeSpan.FromSeconds(10));
        await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server, received: 2000));

        await ui.LoginAsync();
        var visible = ui.Page.Locator("#fleet tbody tr:visible");
        await Expect(visible).ToHaveCountAsync(3);
        await Expect(ui.Page.Locator($"#probe-{healthy}")).ToContainTextAsync("Amsterdam, NL");
        await Expect(ui.Page.Locator($"#probe-{healthy}")).ToContainTextAsync("100 pkt/s");
        await ui.Page.SelectOptionAsync("#filter-state", ProbeStates.Pending);
        await Expect(visible).ToHaveCountAsync(2);
        await ui.Page.SelectOptionAsync("#filter-label", "site=fra");
        await Expect(visible).ToHaveCountAsync(2);
        await ui.Page.FillAsync("#filter-q", "gam");
        await Expect(visible).ToHaveCountAsync(1);
        await Expect(visible).ToContainTextAsync("gamma");
        await ui.Page.SelectOptionAsync("#filter-state", "");
        await ui.Page.SelectOptionAsync("#filter-label", "");
        await ui.Page.FillAsync("#filter-q", "");
        await Expect(visible).ToHaveCountAsync(3);

        // The same filter from the address bar, without the script's help.
        await ui.Page.GotoAsync(ui.Url("/?state=healthy"));
        await Expect(visible).ToHaveCountAsync(1);
        await Expect(visible).ToContainTextAsync("alpha");
    }

    [Fact]
    public async Task Fleet_page_pages_and_sorts_on_the_server_while_counts_and_labels_cover_the_whole_fleet()
    {
        await using var ui = await WebUi.StartAsync();
        var alpha = (await JoinAsync(ui, "alpha", null, "site=ams")).ProbeId;
        var beta = (await JoinAsync(ui, "beta", null, "site=fra")).ProbeId;
        var gamma = (await JoinAsync(ui, "gamma", null, "site=tyo")).ProbeId;
        await ui.LoginAsync();

        var rows = ui.Page.Locator("#fleet tbody tr");
        await ui.Page.GotoAsync(ui.Url("/?limit=2"));
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(rows.Nth(0)).ToHaveIdAsync("probe-" + alpha);
        await Expect(rows.Nth(1)).ToHaveIdAsync("probe-" + beta);
        await Expect(ui.Page.Locator("#shown")).ToHaveTextAsync("1–2 of 3");
        await Expect(ui.Page.Locator("[data-count=total]")).ToHaveTextAsync("3");
        await Expect(ui.Page.Locator("#filter-label option")).ToHaveCountAsync(4); // any and the three sites

        await ui.Page.ClickAsync("#next-page");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(rows.Nth(0)).ToHaveIdAsync("probe-" + gamma);
        await Expect(ui.Page.Locator("#shown")).ToHaveTextAsync("3–3 of 3");
        await Expect(ui.Page.Locator("#next-page")).ToHaveCountAsync(0);
        await Expect(ui.Page.Locator("[data-count=total]")).ToHaveTextAsync("3");

        // The probe column's header turns the order round, from the first page.
        await ui.Page.ClickAsync("#first-page");
        await ui.Page.ClickAsync("#fleet thead a[data-sort='-name']");
        await Expect(ui.Page.Locator("#fleet thead th[aria-sort=descending]")).ToHaveTextAsync("Probe");
        await Expect(rows).ToHaveCountAsync(2);
        await Expect(rows.Nth(0)).ToHaveIdAsync("probe-" + gamma);
        await Expect(rows.Nth(1)).ToHaveIdAsync("probe-" + beta);

        // A cursor that the page did not make is refused with a way back.
        var refused = await ui.Page.GotoAsync(ui.Url("/?cursor=bogus"));
        Assert.Equal(400, refused!.Status);
        await Expect(ui.Page.Locator("main")).ToContainTextAsync("start again from the first page");
    }

    [Fact]
    public async Task Fleet_page_marks_probes_older_than_the_newest_version_the_apt_repository_serves()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, certificate) = await JoinAsync(ui, "alpha", null);
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(ui.Server, received: 1000)); // reports version 0.1.0-test
        await ui.LoginAsync();
        var row = ui.Page.Locator($"#probe-{probeId}");
        await Expect(row).ToContainTextAsync("0.1.0-test");
        await Expect(row.Locator(".outdated")).ToHaveCountAsync(0);

        // A newer survey6-probe in the server's own apt repository (a real .deb, indexed and signed).
        var root = Path.Combine(ui.Server.Root, "deb");
        Directory.CreateDirectory(Path.Combine(root, "DEBIAN"));
        File.WriteAllText(Path.Combine(root, "DEBIAN", "control"),
            "Package: survey6-probe\nVersion: 0.2.0\nArchitecture: amd64\nMaintainer: survey6 <survey6@example.org>\nDescription: test package\n");
        var deb = Path.Combine(ui.Server.Root, "survey6-probe_0.2.0_amd64.deb");
        using (var build = System.Diagnostics.Process.Start("dpkg-deb", ["--root-owner-group", "--build", root, deb])!)
        {
            await build.WaitForExitAsync();
            Assert.Equal(0, build.ExitCode);
        }

        ui.Server.Get<Survey6.Server.Repository.AptRepository>().Add(deb);
        await ui.Page.ReloadAsync();
        await Expect(row.Locator(".outdated")).ToHaveAttributeAsync("title", "newest: 0.2.0");
    }

    [Fact]
    public async Task Every_page_reads_well_on_a_laptop_and_a_phone()
    {
        await using var ui = await WebUi.StartAsync();
        var (probeId, certificate) = await JoinAsync(ui, "edge-ams-01", Amsterdam, "site=ams", "role=edge");
        await JoinAsync(ui, "edge-tyo-01", new Location { Latitude = 35.68, Longitude = 139.69, Country = "JP", City = "Tokyo" }, "site=tyo");
        await JoinAsync(ui, "core-fra-01", new Location { Latitude = 50.11, Longitude = 8.68, Country = "DE", City = "Frankfurt" }, "site=fra");
        // Uploads first: the join checks the certificate against the real clock, which the heartbeats below run ahead of.
        var shas = await UploadAsync(ui, "uploader", 2);
        await UploadRealCaptureAndAggregateAsync(ui);
        await using var stream = ProbeStream.Open(ui.Server, certificate);
        await HeartbeatsAsync(ui.Server, stream, minutes: 12);
        ui.Server.Tokens.Create(TimeSpan.FromDays(7), 10, new Dictionary<string, string> { ["site"] = "ams" }, "Amsterdam rollout");
        WriteLedger(ui.Server, shas[0]);

        var directory = ScreenshotDirectory();
        var pages = new (string Name, string Path, string Heading, string Key)[]
        {
            ("fleet", "/", "Fleet", "#fleet"),
            ("map", "/map", "Map", "#map[data-drawn]"),
            ("probe", "/probes/" + probeId, probeId, "#chart-rate"),
            ("tokens", "/tokens", "Join tokens", "#tokens"),
            ("data", "/data", "Data", "#stages"),
        };
        foreach (var (device, width, height) in new[] { ("laptop", 1366, 860), ("phone", 390, 844) })
        {
            await ui.Page.SetViewportSizeAsync(width, height);
            await ui.Page.GotoAsync(ui.Url("/login"));
            await Shoot(ui.Page, directory, device, "login", width, "Log in", "#password");
            if (device == "laptop")
            {
                await ui.SubmitLoginAsync(WebUi.Password);
                await ui.WaitForFleetPageAsync();
            }

            foreach (var (name, path, heading, key) in pages)
            {
                await ui.Page.GotoAsync(ui.Url(path));
                await Shoot(ui.Page, directory, device, name, width, heading, key);
            }
        }
    }

    /// <summary>Saves a full-page screenshot and checks that what it shows can be read: the heading and the page's main element visible, nothing wider than the screen, text not tiny.</summary>
    private static async Task Shoot(IPage page, string directory, string device, string name, int width, string heading, string key)
    {
        await Expect(page.Locator("h1")).ToHaveTextAsync(heading);
        await Expect(page.Locator(key).First).ToBeVisibleAsync();
        var file = Path.Combine(directory, $"{name}-{device}.png");
        await page.ScreenshotAsync(new() { Path = file, FullPage = true });
        Assert.True(new FileInfo(file).Length > 8_000, $"{file} is almost empty");

        var box = await page.Locator(key).First.BoundingBoxAsync();
        Assert.True(box is { Width: > 100, Height: > 30 }, $"{name} on a {device}: {key} is {box?.Width}x{box?.Height}");
        Assert.True(box!.X >= 0 && box.X + box.Width <= width + 1, $"{name} on a {device}: {key} spans {box.X}..{box.X + box.Width} of {width}");
        var pageWidth = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth");
        Assert.True(pageWidth <= width, $"{name} on a {device} is {pageWidth}px wide for a {width}px screen");
        var fontSize = await page.EvaluateAsync<double>("() => parseFloat(getComputedStyle(document.querySelector('main')).fontSize)");
        Assert.True(fontSize >= 14, $"{name} on a {device}: text is {fontSize}px");
        var headingBox = await page.Locator("h1").BoundingBoxAsync();
        Assert.True(headingBox is { Y: < 200 } && headingBox.Y + headingBox.Height > 0, $"{name} on a {device}: the heading is not at the top");
    }

    /// <summary>Where the screenshots go: beside the test results that test.sh collects (.build/test-results), else the test's output folder.</summary>
    private static string ScreenshotDirectory()
    {
        var directory = Environment.GetEnvironmentVariable("SURVEY6_SCREENSHOTS");
        if (string.IsNullOrEmpty(directory))
            directory = Path.Combine(TestData.RepositoryRoot, ".build", "test-results", "web-screenshots");

        Directory.CreateDirectory(directory);
        return directory;
    }

    private static readonly Location Amsterdam = new() { Latitude = 52.37, Longitude = 4.90, Country = "NL", City = "Amsterdam" };

    private static List<string> AcceptDialogs(IPage page)
    {
        var dialogs = new List<string>();
        page.Dialog += (_, dialog) =>
        {
            lock (dialogs)
                dialogs.Add(dialog.Message);
            _ = dialog.AcceptAsync();
        };
        return dialogs;
    }

    private static async Task<(string ProbeId, System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate)> JoinAsync(
        WebUi ui, string hostname, Location? location, params string[] labels)
    {
        var token = ui.Server.CreateToken(labels: labels.Select(l => l.Split('=')).ToDictionary(p => p[0], p => p[1]));
        var facts = new HostFacts { Hostname = hostname, SoftwareVersion = "0.1.0" };
        if (location is not null)
            facts.Location = location;
        var (response, certificate) = await ui.Server.JoinAsync(token, facts);
        return (response.ProbeId, certificate);
    }

    /// <summary>Heartbeats every 10 s (server clock) for <paramref name="minutes"/> minutes: 100 packets/s, more drops each minute, a spool going up and down.</summary>
    private static async Task HeartbeatsAsync(ServerHarness server, ProbeStream stream, int minutes)
    {
        ulong received = 0, dropped = 0;
        for (var i = 0; i < minutes; i++)
        {
            for (var k = 0; k < 6; k++)
            {
                received += 1000;
                dropped += (ulong)i;
                var heartbeat = ProbeStream.Healthy(server, received);
                heartbeat.Capture.KernelDropped = dropped;
                heartbeat.Spool.Files = (uint)(1 + (i % 4));
                heartbeat.Spool.Bytes = (ulong)(1 + (i % 4)) * (40UL << 20);
                await stream.HeartbeatAsync(heartbeat);
                server.Time.Advance(TimeSpan.FromSeconds(10));
            }
        }

        // A last one "now", so that the probe is healthy when the page is read.
        var last = ProbeStream.Healthy(server, received + 1000);
        last.Capture.KernelDropped = dropped;
        await stream.HeartbeatAsync(last);
    }

    /// <summary>Joins with the probe's own join code and uploads captures with its own uploader; returns their hashes.</summary>
    private static async Task<List<string>> UploadAsync(WebUi ui, string name, int count)
    {
        var token = ui.Server.CreateToken();
        using var connection = await UploadTestSupport.JoinAsync(ui.Server.GrpcUrl, token, ui.Server.Pki.Authority.Pin, Path.Combine(ui.Server.Root, name));
        var uploader = UploadTestSupport.Uploader(connection);
        var shas = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var data = UploadTestSupport.Capture(seed: 40 + i);
            var path = UploadTestSupport.Write(Path.Combine(ui.Server.Root, name + "-spool"), data);
            await uploader.UploadAsync(path, UploadTestSupport.Manifest(path));
            shas.Add(UploadTestSupport.Sha(data));
        }

        return shas;
    }

    /// <summary>Writes the aggregator's ledger with the aggregator's own code: a parse run, a failed aggregate run, a quarantined capture, one built date.</summary>
    private static void WriteLedger(ServerHarness server, string quarantinedSha)
    {
        var ledger = new RunLedger(Path.Combine(server.DataDirectory, "aggregator.db"), TimeProvider.System);
        var parse = ledger.StartRun("parse");
        ledger.FinishRun(parse, "succeeded", 2, 1, 1234, null);
        ledger.RecordCapture(new PendingCapture(quarantinedSha, "p-x", new DateOnly(2025, 3, 14), "/nowhere.pcapng", null), RunLedger.Quarantined, 5,
            "bad block length", null, null, null, parse);
        ledger.SetPartition(new DateOnly(2025, 3, 14), "fp", 1, """{"packets":1234,"dns":56}""", parse);
        var aggregate = ledger.StartRun("aggregate");
        ledger.FinishRun(aggregate, "failed", 1, 0, 0, "disk full");
    }
}

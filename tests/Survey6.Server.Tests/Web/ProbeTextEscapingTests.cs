using Survey6.Contracts.V1;
using Survey6.Testing;

namespace Survey6.Server.Tests.Web;

/// <summary>
/// A probe host controls what it reports about itself (host name, labels, OS, kernel, interfaces, place). Each of
/// those strings reaches the admin's pages as text, never as markup.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ProbeTextEscapingTests
{
    private const string Markup = "<img src=x onerror=alert(1)>";

    [Fact]
    public async Task Markup_in_every_string_a_probe_reports_is_shown_escaped_on_the_fleet_and_probe_pages()
    {
        await using var server = await ServerHarness.StartAsync();
        server.Get<Survey6.Server.Web.WebAdminStore>().SetPassword("correct horse battery");
        var facts = new HostFacts { Hostname = "h" + Markup, Os = "os" + Markup, Kernel = "k" + Markup, SoftwareVersion = "v" + Markup };
        facts.Labels["site"] = "s" + Markup;
        facts.Interfaces.Add(new Interface { Name = "i" + Markup, Mac = "02:00:00:00:00:01", Addresses = { "2001:db8::1/64" } });
        facts.Location = new Location { Latitude = 1, Longitude = 2, Country = "NL", City = "c" + Markup };
        var (probe, _) = await server.JoinAsync(server.CreateToken(), facts);
        using var client = WebLogin.Client(server);
        await WebLogin.LoginAsync(client, "correct horse battery");

        foreach (var path in new[] { "/", "/probes/" + probe.ProbeId })
        {
            var page = await client.GetStringAsync(new Uri(path, UriKind.Relative));
            Assert.DoesNotContain(Markup, page, StringComparison.Ordinal);
            Assert.DoesNotContain("<img src=x", page, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("&lt;img", page, StringComparison.Ordinal);
        }
    }
}

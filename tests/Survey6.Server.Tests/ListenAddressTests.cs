using System.Net;
using Survey6.Server.Hosting;
using Survey6.Server.Options;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ListenAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:0", "127.0.0.1", 0)]
    [InlineData("[::1]:7443", "::1", 7443)]
    [InlineData("0.0.0.0:80", "0.0.0.0", 80)]
    [InlineData("[::]:80", "::", 80)]
    [InlineData("localhost:0", "127.0.0.1", 0)]
    [InlineData("*:7443", null, 7443)]
    public void Listen_addresses_parse_to_their_address_and_port(string text, string? address, int port)
    {
        Assert.True(ListenAddress.TryParse(text, out var listen));
        Assert.Equal(address is null ? null : IPAddress.Parse(address), listen.Address);
        Assert.Equal(port, listen.Port);
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1")]
    [InlineData("::1:80")]
    [InlineData("example.org:80")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:-1")]
    public void Malformed_listen_addresses_are_refused(string text) => Assert.False(ListenAddress.TryParse(text, out _));

    [Fact]
    public void Advertised_url_prefers_the_configured_host_then_a_specific_listen_address()
    {
        Assert.Equal("https://c2.example.net:7443/", ServerEndpoints.Advertise(new ServerOptions { AdvertisedHost = "c2.example.net" }, 7443).ToString());
        Assert.Equal("https://[2001:db8::1]:9000/", ServerEndpoints.Advertise(new ServerOptions { GrpcListen = "[2001:db8::1]:0" }, 9000).ToString());
        Assert.Equal($"https://{Dns.GetHostName().ToLowerInvariant()}:7443/", ServerEndpoints.Advertise(new ServerOptions { GrpcListen = "*:7443" }, 7443).ToString());
    }
}

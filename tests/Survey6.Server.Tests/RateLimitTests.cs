using Grpc.Core;
using Survey6.Server.Diagnostics;
using Survey6.Server.Enrollment;
using Survey6.Server.Storage;
using Survey6.Testing;

namespace Survey6.Server.Tests;

[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class RateLimitTests
{
    [Fact]
    public async Task Joins_beyond_the_limit_are_refused_until_the_window_slides()
    {
        await using var server = await ServerHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Server:JoinRateLimit:PermitLimit"] = "3",
            ["Server:JoinRateLimit:Window"] = "00:01:00",
        });
        var token = server.CreateToken(uses: 10);

        // Failed attempts count too: the limit is there to slow down token guessing.
        await Assert.ThrowsAsync<RpcException>(() => server.JoinAsync("guess0.0123456789abcdef"));
        server.Time.Advance(TimeSpan.FromSeconds(20));
        await server.JoinAsync(token);
        server.Time.Advance(TimeSpan.FromSeconds(10));
        await server.JoinAsync(token);

        for (int i = 0; i < 3; i++)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => server.JoinAsync(token));
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.Equal("rate-limited", e.Trailers.GetValue(EnrollmentService.RefusalTrailer));
        }

        Assert.Equal(3, server.Counters.Get(ServerCounters.JoinRefusedPrefix + "rate-limited"));
        // A flood is one event, not one per attempt.
        Assert.Single(server.Events.Recent(50, EventKinds.JoinRefused), e => e.Detail == "rate-limited");
        Assert.Equal(2, server.Tokens.List().Single().Used);

        // At 61 s the first attempt has left the window; the joins at 20 s and 30 s are still in it.
        server.Time.Advance(TimeSpan.FromSeconds(31));
        await server.JoinAsync(token);
        await Assert.ThrowsAsync<RpcException>(() => server.JoinAsync(token));
    }

    [Theory]
    [InlineData("192.0.2.7", "192.0.2.7")]
    [InlineData("::ffff:192.0.2.7", "192.0.2.7")]
    [InlineData("2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:2::/64")]
    public void Sources_are_addresses_or_ipv6_64s(string address, string key) =>
        Assert.Equal(key, JoinRateLimiter.SourceKey(System.Net.IPAddress.Parse(address)));
}

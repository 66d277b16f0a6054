using Survey6.Server.Control;
using Survey6.Server.Housekeeping;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>Finished join tokens, answered commands and old heartbeat rollups leave state.db after their retention; live ones stay.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class HousekeepingTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync(new Dictionary<string, string?>
    {
        ["Server:Housekeeping:TokenRetention"] = "7.00:00:00",
        ["Server:Housekeeping:CommandRetention"] = "30.00:00:00",
    });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    // The hosted sweeper also runs when the fake clock passes its interval, so tests check what is left, not who deleted it.
    private StateSweeper Sweeper => _server.Get<StateSweeper>();

    private HashSet<string> TokenIds() => _server.Tokens.List().Select(t => t.Id).ToHashSet();

    [Fact]
    public async Task Expired_revoked_and_used_up_tokens_are_deleted_after_the_retention_and_usable_ones_never()
    {
        static string Id(string token) => token.Split('.')[0];
        var expiring = Id(_server.CreateToken(ttl: TimeSpan.FromHours(1)));
        var revoked = Id(_server.CreateToken());
        var usedUp = _server.CreateToken(uses: 1);
        var active = Id(_server.CreateToken(uses: 5, ttl: TimeSpan.FromDays(365)));
        var forever = Id(_server.Tokens.Create(null, 5, new Dictionary<string, string>(), "no expiry").Token);
        Assert.True(_server.Tokens.Revoke(revoked));
        await _server.JoinAsync(usedUp);

        // Finished, but within the retention: kept, so a join is still refused with its reason.
        _server.Time.Advance(TimeSpan.FromDays(6));
        Sweeper.Sweep();
        Assert.Superset(new[] { expiring, revoked, Id(usedUp), active, forever }.ToHashSet(), TokenIds());

        // Revoked and used up at the start: 7 days later they go. The expiring one stopped an hour later, and goes an hour later.
        _server.Time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        Sweeper.Sweep();
        Assert.Equal(new[] { expiring, active, forever }.ToHashSet(), TokenIds());

        _server.Time.Advance(TimeSpan.FromHours(1));
        Sweeper.Sweep();
        Assert.Equal(new[] { active, forever }.ToHashSet(), TokenIds());

        _server.Time.Advance(TimeSpan.FromDays(300));
        Sweeper.Sweep();
        Assert.Equal(new[] { active, forever }.ToHashSet(), TokenIds());
    }

    [Fact]
    public async Task Answered_commands_are_deleted_after_the_retention_and_unanswered_ones_of_live_probes_are_kept()
    {
        var (joined, certificate) = await _server.JoinAsync(_server.CreateToken());
        var commands = _server.Get<ProbeCommands>();
        await using var stream = ProbeStream.Open(_server, certificate);
        await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        var answered = commands.UploadNow(joined.ProbeId, "test");
        var sent = await stream.NextCommandAsync();
        Assert.Equal(answered.Id, sent.Id);
        await stream.AnswerAsync(sent.Id);
        await ProbeChanges.EventuallyAsync(() => commands.Get(answered.Id)!.Status == "ok", "the answer recorded");
        await stream.DisposeAsync();
        var pending = commands.UploadNow(joined.ProbeId, "test"); // the probe is gone: stays pending

        _server.Time.Advance(TimeSpan.FromDays(29));
        Sweeper.Sweep();
        Assert.NotNull(commands.Get(answered.Id));
        _server.Time.Advance(TimeSpan.FromDays(2));
        Sweeper.Sweep();
        Assert.Null(commands.Get(answered.Id));
        Assert.NotNull(commands.Get(pending.Id));

        // Once the probe is revoked, its unanswered commands can never be delivered: they go after the retention too.
        _server.Get<ProbeRevoker>().Revoke(joined.ProbeId, "decommissioned", "test");
        Sweeper.Sweep();
        Assert.Null(commands.Get(pending.Id));
    }

    [Fact]
    public async Task Heartbeat_rollups_are_deleted_by_the_same_sweep_after_the_history_retention()
    {
        var (joined, certificate) = await _server.JoinAsync(_server.CreateToken());
        await using (var stream = ProbeStream.Open(_server, certificate))
            await stream.HeartbeatAsync(ProbeStream.Healthy(_server));
        var health = _server.Get<ProbeHealthQuery>();
        var since = _server.Time.GetUtcNow() - TimeSpan.FromHours(1);
        Assert.NotEmpty(await health.HistoryAsync(joined.ProbeId, since, _server.Time.GetUtcNow() + TimeSpan.FromMinutes(1)));

        // Server:Health:HistoryRetention defaults to 7 days.
        _server.Time.Advance(TimeSpan.FromDays(6));
        Sweeper.Sweep();
        Assert.NotEmpty(await health.HistoryAsync(joined.ProbeId, since, _server.Time.GetUtcNow()));
        _server.Time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(2));
        Sweeper.Sweep();
        Assert.Empty(await health.HistoryAsync(joined.ProbeId, since, _server.Time.GetUtcNow()));
    }

    [Theory]
    [InlineData("Server:Housekeeping:CommandRetention", "00:00:01")]
    [InlineData("Server:Housekeeping:SweepInterval", "30.00:00:00")]
    [InlineData("Server:Control:HeartbeatBatchDelay", "00:00:05")]
    [InlineData("Server:Control:HeartbeatQueueCapacity", "1")]
    public async Task The_server_refuses_to_start_with_a_setting_out_of_range(string key, string value)
    {
        var root = TempDirectory.Create();
        try
        {
            var e = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => ServerHarness.StartAsync(root, new Dictionary<string, string?> { [key] = value }));
            Assert.Contains(key.Split(':')[^1], e.Message, StringComparison.Ordinal);
        }
        finally
        {
            TempDirectory.Delete(root);
        }
    }
}

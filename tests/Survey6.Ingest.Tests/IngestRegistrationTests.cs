using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Survey6.Ingest.Tests;

[Collection(RedisCollection.Name)]
public sealed class IngestRegistrationTests : IDisposable
{
    private readonly RedisServerFixture _redis;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("survey6-ingest-di-");

    public IngestRegistrationTests(RedisServerFixture redis)
    {
        _redis = redis;
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Delete(recursive: true);
    }

    [Fact]
    public async Task Sqlite_kind_binds_its_options_and_registers_the_sqlite_queue()
    {
        await using var services = Build(new()
        {
            ["Ingest:Kind"] = "sqlite",
            ["Ingest:Sqlite:Path"] = Path.Combine(_dir.FullName, "ingest.db"),
            ["Ingest:LeaseTime"] = "00:02:30",
            ["Ingest:MaxAttempts"] = "7",
        });
        await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None);

        var options = services.GetRequiredService<IOptions<IngestOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(150), options.LeaseTime);
        Assert.Equal(7, options.MaxAttempts);
        var queue = Assert.IsType<SqliteIngestQueue>(services.GetRequiredService<IIngestQueue>());
        Assert.Same(queue, services.GetRequiredService<IIngestQueue>());
        Assert.True(File.Exists(queue.Path));
    }

    [Fact]
    public async Task Redis_kind_registers_the_streams_queue_and_it_works()
    {
        await using var services = Build(new()
        {
            ["Ingest:Kind"] = "Redis", // either case
            ["Ingest:Redis:Configuration"] = _redis.Configuration,
            ["Ingest:Redis:Stream"] = $"test:{Guid.NewGuid():N}",
            ["Ingest:Redis:Group"] = "workers",
        });
        await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None);

        var queue = Assert.IsType<RedisStreamsIngestQueue>(services.GetRequiredService<IIngestQueue>());
        Assert.True(await queue.EnqueueAsync(TestItems.Capture(1), CancellationToken.None));
        Assert.NotNull(await queue.TryDequeueAsync("w", CancellationToken.None));
    }

    [Fact]
    public async Task Defaults_are_sqlite_with_a_ten_minute_lease_and_five_attempts()
    {
        await using var services = Build(new() { ["Ingest:Sqlite:Path"] = Path.Combine(_dir.FullName, "d.db") });
        await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None);

        var options = services.GetRequiredService<IOptions<IngestOptions>>().Value;
        Assert.Equal((IngestQueueKind.Sqlite, TimeSpan.FromMinutes(10), 5), (options.Kind, options.LeaseTime, options.MaxAttempts));
        Assert.Equal(("survey6:ingest", "aggregator"), (options.Redis.Stream, options.Redis.Group));
    }

    [Theory]
    [InlineData("Ingest:LeaseTime", "00:00:00", "Ingest:LeaseTime")]
    [InlineData("Ingest:LeaseTime", "2.00:00:00", "Ingest:LeaseTime")]
    [InlineData("Ingest:MaxAttempts", "0", "Ingest:MaxAttempts")]
    [InlineData("Ingest:Sqlite:Path", "", "Ingest:Sqlite:Path")]
    [InlineData("Ingest:Sqlite:BusyTimeout", "00:00:00", "Ingest:Sqlite:BusyTimeout")]
    public async Task Invalid_sqlite_settings_fail_at_start(string key, string value, string expected)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Ingest:Kind"] = "sqlite",
            ["Ingest:Sqlite:Path"] = Path.Combine(_dir.FullName, "x.db"),
            [key] = value,
        };
        await using var services = Build(settings);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () => await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None));
        Assert.Contains(error.Failures, f => f.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Ingest:Redis:Configuration")]
    [InlineData("Ingest:Redis:Stream")]
    [InlineData("Ingest:Redis:Group")]
    public async Task Redis_settings_are_required_for_the_redis_kind(string missing)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Ingest:Kind"] = "redis",
            ["Ingest:Redis:Configuration"] = "localhost:6379",
            ["Ingest:Redis:Stream"] = "s",
            ["Ingest:Redis:Group"] = "g",
            [missing] = "",
        };
        await using var services = Build(settings);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () => await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None));
        Assert.Contains(error.Failures, f => f.Contains(missing, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_kind_fails_at_start()
    {
        await using var services = Build(new() { ["Ingest:Kind"] = "kafka" });

        await Assert.ThrowsAnyAsync<InvalidOperationException>(async () => await services.GetRequiredService<IAsyncStartupValidator>().ValidateAsync(CancellationToken.None));
    }

    [Fact]
    public void Queues_refuse_invalid_options_when_built_directly()
    {
        var options = Options.Create(new IngestOptions { LeaseTime = TimeSpan.Zero, Sqlite = { Path = Path.Combine(_dir.FullName, "y.db") } });

        Assert.Throws<OptionsValidationException>(() => new SqliteIngestQueue(options, TimeProvider.System));
        Assert.Throws<OptionsValidationException>(() => new RedisStreamsIngestQueue(_redis.Connection, options, TimeProvider.System));
    }

    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddSurvey6IngestQueue(configuration).BuildServiceProvider();
    }
}

namespace Survey6.Aggregator.Tests;

/// <summary>One private redis-server for the tests of this assembly (xUnit looks for collection definitions only in the test assembly itself).</summary>
[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServerFixture>
{
    public const string Name = RedisServerFixture.CollectionName;
}

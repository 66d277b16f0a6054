namespace Survey6.Aggregator.Tests;

/// <summary>The cross-process stage lock: shared holders side by side, exclusive ones alone and not starved.</summary>
public sealed class StageLockTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("survey6-lock-").FullName;

    private string LockPath => Path.Combine(_dir, "aggregator.lock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Shared_holders_coexist_and_exclude_an_exclusive_one()
    {
        using (var a = await StageLock.TryAcquireAsync(LockPath, shared: true, TimeSpan.Zero, CancellationToken.None))
        using (var b = await StageLock.TryAcquireAsync(LockPath, shared: true, TimeSpan.Zero, CancellationToken.None))
        {
            Assert.NotNull(a);
            Assert.NotNull(b);
            Assert.Null(await StageLock.TryAcquireAsync(LockPath, shared: false, TimeSpan.FromMilliseconds(300), CancellationToken.None));
        }

        using var exclusive = await StageLock.TryAcquireAsync(LockPath, TimeSpan.Zero, CancellationToken.None);
        Assert.NotNull(exclusive);
        Assert.Null(await StageLock.TryAcquireAsync(LockPath, shared: true, TimeSpan.FromMilliseconds(300), CancellationToken.None));
    }

    [Fact]
    public async Task A_waiting_exclusive_holder_keeps_new_shared_holders_out()
    {
        var first = await StageLock.TryAcquireAsync(LockPath, shared: true, TimeSpan.Zero, CancellationToken.None);
        Assert.NotNull(first);
        var waiting = StageLock.TryAcquireAsync(LockPath, shared: false, TimeSpan.FromSeconds(60), CancellationToken.None);
        await GateTakenAsync(waiting);
        Assert.False(waiting.IsCompleted);

        // Without the gate this shared request would succeed and, repeated, starve the exclusive one.
        Assert.Null(await StageLock.TryAcquireAsync(LockPath, shared: true, TimeSpan.FromMilliseconds(300), CancellationToken.None));

        first.Dispose();
        using var exclusive = await waiting;
        Assert.NotNull(exclusive);
    }

    /// <summary>Waits until the waiting exclusive request holds the gate: a shared open of the gate file is then refused.</summary>
    private async Task GateTakenAsync(Task<StageLock?> waiting)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !waiting.IsCompleted)
        {
            try
            {
                using var probe = new FileStream(LockPath + ".gate", FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            }
            catch (FileNotFoundException)
            {
                // Not created yet.
            }
            catch (IOException)
            {
                return;
            }

            await Task.Delay(10);
        }

        Assert.Fail("the exclusive request never took the gate");
    }
}

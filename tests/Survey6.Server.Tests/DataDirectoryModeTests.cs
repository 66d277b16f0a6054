using Xunit.Abstractions;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// The attack of the security review (finding F3): an operator runs <c>survey6 server run --data-dir NEW</c> from a
/// shell with the usual umask 022, and any local user could then read the Parquet lake of captured packets, the
/// ingest queue and the ledger, because the aggregator and the queue made the directory before the server's
/// owner-only set-up. The data directory must be owner-only whoever makes it first.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class DataDirectoryModeTests(ITestOutputHelper output) : IDisposable
{
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Server_run_under_umask_022_makes_a_new_data_directory_and_everything_in_it_owner_only()
    {
        var data = Path.Combine(_root, "new");
        using var server = await ServerProcess.StartAsync(data, 0, aggregator: true, new Dictionary<string, string>
        {
            // The embedded aggregator builds its stages (ledger, lake) at its first parse tick: every second here.
            ["Aggregator__Schedules__Parse"] = "* * * * * ?",
        }, umask: "022");

        var ledger = Path.Combine(data, "aggregator.db");
        var lake = Path.Combine(data, "lake");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!File.Exists(ledger) || !Directory.Exists(lake))
        {
            Assert.True(DateTime.UtcNow < deadline, "the embedded aggregator did not start:\n" + server.Output);
            await Task.Delay(100);
        }
        output.WriteLine(Modes(data));

        var expected = new Dictionary<string, UnixFileMode>
        {
            [""] = OwnerOnlyDirectory,
            ["pki"] = OwnerOnlyDirectory,
            ["lake"] = OwnerOnlyDirectory,
            ["state.db"] = OwnerOnlyFile,
            ["ingest.db"] = OwnerOnlyFile,
            ["aggregator.db"] = OwnerOnlyFile,
            ["aggregator-scheduler.db"] = OwnerOnlyFile,
            // Stored captures are for the service's group too (an aggregator worker running as another user): 0750.
            ["captures"] = OwnerOnlyDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute,
            ["incoming"] = OwnerOnlyDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute,
        };
        var actual = expected.Keys.ToDictionary(name => name, name => File.GetUnixFileMode(Path.Combine(data, name)));
        Assert.Equal(expected, actual);
        // SQLite's own files beside the databases take their database's mode.
        foreach (var side in Directory.EnumerateFiles(data, "*.db-*"))
            Assert.True(File.GetUnixFileMode(side) == OwnerOnlyFile, $"{side} is {File.GetUnixFileMode(side)}");
    }

    [Fact]
    public async Task Server_run_tightens_an_existing_data_directory_that_others_may_read_and_says_so()
    {
        var data = Path.Combine(_root, "open");
        Directory.CreateDirectory(data);
        File.SetUnixFileMode(data, OwnerOnlyDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

        using var server = await ServerProcess.StartAsync(data, 0, umask: "022");

        Assert.Equal(OwnerOnlyDirectory, File.GetUnixFileMode(data));
        // The console logger writes on its own thread: the line may trail the printed addresses a little.
        var said = $"The data directory {data} was mode 0755, open to its group or others; it is now 0700 (owner only)";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!server.Output.Contains(said, StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the server did not log the change:\n" + server.Output);
            await Task.Delay(50);
        }
    }

    private static string Modes(string data) => string.Join('\n', Directory.EnumerateFileSystemEntries(data)
        .Select(p => $"{Convert.ToString((int)File.GetUnixFileMode(p), 8)} {Path.GetFileName(p)}"));
}

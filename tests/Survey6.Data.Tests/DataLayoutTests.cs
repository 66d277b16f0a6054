using Microsoft.Extensions.Logging;

namespace Survey6.Data.Tests;

public sealed class DataLayoutTests : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Open = OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private readonly string _dir = Directory.CreateTempSubdirectory("survey6-layout-").FullName;

    [Fact]
    public void A_stored_captures_name_is_relative_to_the_data_directory_and_resolves_to_its_path()
    {
        var layout = new DataLayout(Path.Combine(_dir, "data"));
        var sha = new string('a', 64);
        var date = new DateOnly(2024, 5, 1);
        var name = DataLayout.StoredCaptureName("probe-1", date, sha);
        Assert.Equal($"captures/probe-1/2024-05-01/{sha}.pcapng", name);
        Assert.False(Path.IsPathRooted(name));
        Assert.Equal(layout.CapturePath("probe-1", date, sha), Path.Combine(layout.Root, name));
        Assert.Throws<ArgumentException>(() => DataLayout.StoredCaptureName("..", date, sha));
        Assert.Throws<ArgumentException>(() => DataLayout.StoredCaptureName("probe-1", date, "../x"));
    }

    [Fact]
    public void Every_name_is_under_the_data_directory_unless_the_aggregator_settings_move_the_lake_or_the_ledger()
    {
        var layout = new DataLayout(Path.Combine(_dir, "data"));
        Assert.Equal(Path.Combine(_dir, "data", "lake"), layout.Lake);
        Assert.Equal(Path.Combine(_dir, "data", "aggregator.db"), layout.Ledger);
        Assert.Equal(Path.Combine(_dir, "data", "aggregator-scheduler-w1.db"), layout.SchedulerStore("w1"));
        Assert.Equal(Path.Combine(_dir, "data", "aggregator-scheduler.db"), layout.SchedulerStore(null));

        var settings = new Dictionary<string, string?>
        {
            [DataLayout.LakeDirectorySetting] = Path.Combine(_dir, "big-disk", "lake"),
            [DataLayout.LedgerPathSetting] = Path.Combine(_dir, "ledger", "runs.db"),
        };
        var server = DataLayout.ForServer(Path.Combine(_dir, "data"), key => settings.GetValueOrDefault(key));
        Assert.Equal(Path.Combine(_dir, "big-disk", "lake"), server.Lake);
        Assert.Equal(Path.Combine(_dir, "ledger", "runs.db"), server.Ledger);
        Assert.Equal(Path.Combine(_dir, "data", "captures"), server.Captures);

        // The aggregator's own data directory, when set, is where its default lake and ledger are.
        var elsewhere = DataLayout.ForServer(Path.Combine(_dir, "data"),
            key => key == DataLayout.AggregatorDataDirectorySetting ? Path.Combine(_dir, "agg") : null);
        Assert.Equal(Path.Combine(_dir, "agg", "lake"), elsewhere.Lake);
        Assert.Equal(Path.Combine(_dir, "agg", "aggregator.db"), elsewhere.Ledger);
        Assert.Equal(Path.Combine(_dir, "data", "state.db"), elsewhere.StateDatabase);
    }

    [Fact]
    public void A_missing_data_directory_and_its_missing_parents_are_created_owner_only_whatever_the_umask()
    {
        var root = Path.Combine(_dir, "parent", "data");
        new DataLayout(root).EnsureOwnerOnly();
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(root));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(Path.GetDirectoryName(root)!));
    }

    [Fact]
    public void An_existing_data_directory_open_to_others_is_tightened_and_the_log_says_so()
    {
        var root = Path.Combine(_dir, "data");
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, Open);
        var logger = new ListLogger();

        new DataLayout(root).EnsureOwnerOnly(logger);

        Assert.Equal(OwnerOnly, File.GetUnixFileMode(root));
        var line = Assert.Single(logger.Lines);
        Assert.Contains($"The data directory {root} was mode 0755", line, StringComparison.Ordinal);
        Assert.Contains("now 0700", line, StringComparison.Ordinal);

        new DataLayout(root).EnsureOwnerOnly(logger);
        Assert.Single(logger.Lines); // nothing to do the second time
    }

    [Fact]
    public void A_data_directory_open_to_others_that_cannot_be_changed_is_refused_with_the_command_to_run()
    {
        Tool.RequireRoot();
        var mount = Path.Combine(_dir, "ro");
        Directory.CreateDirectory(mount);
        Tool.Run("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", mount).Check();
        try
        {
            var root = Path.Combine(mount, "data");
            Directory.CreateDirectory(root);
            File.SetUnixFileMode(root, Open);
            Tool.Run("mount", "-o", "remount,ro", mount).Check();

            var e = Assert.Throws<UnauthorizedAccessException>(() => new DataLayout(root).EnsureOwnerOnly());

            Assert.Equal($"The data directory {root} is mode 0755: its group or others may read the captures, keys and databases in it, " +
                $"and this user may not change that. Run `chmod 700 {root}` as its owner (or as root), then start again.", e.Message);
            Assert.Equal(Open, File.GetUnixFileMode(root));
        }
        finally
        {
            Tool.Run("umount", mount).Check();
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}

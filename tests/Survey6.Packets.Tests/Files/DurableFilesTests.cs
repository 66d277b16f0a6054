using System.Runtime.Versioning;
using System.Text;
using Survey6.Packets.Files;

namespace Survey6.Packets.Tests.Files;

[SupportedOSPlatform("linux")]
public sealed class DurableFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("survey6-files-").FullName;

    [Fact]
    public void WriteAtomically_replaces_the_file_with_the_mode_asked_for_and_leaves_no_temporary_file()
    {
        var path = Path.Combine(_dir, "key.pem");
        File.WriteAllText(path, "old");
        File.WriteAllText(path + DurableFiles.TempSuffix, "a stale temporary file of a crashed writer");
        File.SetUnixFileMode(path + DurableFiles.TempSuffix, SecureFiles.PublicFile);

        DurableFiles.WriteAtomically(path, "new"u8, SecureFiles.OwnerOnlyFile);

        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(SecureFiles.OwnerOnlyFile, File.GetUnixFileMode(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void CreateAtomically_never_replaces_a_file_and_of_racing_writers_exactly_one_wins()
    {
        var path = Path.Combine(_dir, "anonymisation.key");
        using var start = new Barrier(8);
        var won = new bool[8];
        var threads = Enumerable.Range(0, 8).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            won[i] = DurableFiles.CreateAtomically(path, Encoding.ASCII.GetBytes("writer " + i), SecureFiles.OwnerOnlyFile);
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        var winner = Assert.Single(Enumerable.Range(0, 8), i => won[i]);
        Assert.Equal("writer " + winner, File.ReadAllText(path));
        Assert.Equal(SecureFiles.OwnerOnlyFile, File.GetUnixFileMode(path));
        Assert.Equal([path], Directory.GetFiles(_dir)); // the losers' temporary files are gone
        Assert.False(DurableFiles.CreateAtomically(path, "late"u8));
        Assert.Equal("writer " + winner, File.ReadAllText(path));
    }

    [Fact]
    public void Missing_parents_of_an_owner_only_directory_are_owner_only_too()
    {
        var leaf = Path.Combine(_dir, "a", "b", "c");
        SecureFiles.CreateOwnerOnlyDirectory(leaf);
        Assert.Equal(SecureFiles.OwnerOnlyDirectory, File.GetUnixFileMode(leaf));
        Assert.Equal(SecureFiles.OwnerOnlyDirectory, File.GetUnixFileMode(Path.Combine(_dir, "a")));
    }

    [Fact]
    public void Syncing_a_folder_that_is_not_there_is_an_error_naming_it()
    {
        var missing = Path.Combine(_dir, "gone");
        var e = Assert.Throws<IOException>(() => DurableFiles.SyncDirectory(missing));
        Assert.Contains(missing, e.Message, StringComparison.Ordinal);
        Assert.False(DurableFiles.TrySyncDirectory(missing));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}

using System.CommandLine;
using System.Runtime.InteropServices;

namespace Survey6.Cli;

/// <summary>
/// Checks of the paths an operator types, before a command uses them, so that a mistake gets a line that names the
/// option, the path and what is wrong with it (rather than "Access to the path is denied" for a directory given as a
/// file). <see cref="CheckOptions"/> runs for every command; commands call the others for paths they resolve themselves.
/// </summary>
public static partial class CliPaths
{
    /// <summary>Options naming a file the command reads.</summary>
    private static readonly string[] FileOptions = ["--config", "--manifest"];

    /// <summary>Options naming a directory.</summary>
    private static readonly string[] DirectoryOptions = ["--data-dir", "--state-dir", "--lake"];

    /// <summary>The only commands that may create the directory they are given; every other one needs it to exist.</summary>
    private static readonly HashSet<string> Creators = new(StringComparer.Ordinal)
    {
        "survey6 server run", "survey6 server token create", "survey6 probe join", "survey6 probe run",
        "survey6 demo",
    };

    private const int AtCurrentDirectory = -100;
    private const int AtEffectiveAccess = 0x200;
    private const int ReadAccess = 4;
    private const int WriteAccess = 2;
    private const int SearchAccess = 1;

    /// <summary>Checks the file and directory options given on the command line.</summary>
    public static void CheckOptions(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var command = CliFailure.CommandName(parse);
        for (System.CommandLine.Parsing.SymbolResult? result = parse.CommandResult; result is not null; result = result.Parent)
        {
            if (result is not System.CommandLine.Parsing.CommandResult commandResult)
                continue;
            foreach (var option in commandResult.Command.Options.Where(o => !o.Hidden || o.Recursive))
            {
                if (parse.GetResult(option) is not { Implicit: false } optionResult || optionResult.Tokens.Count == 0)
                    continue;
                var value = optionResult.Tokens[^1].Value;
                if (FileOptions.Contains(option.Name))
                    RequireReadableFile(value, option.Name);
                else if (DirectoryOptions.Contains(option.Name))
                    RequireDirectory(value, option.Name, mayCreate: Creators.Contains(command));
            }
        }
    }

    /// <summary>A file to read: it exists, is not a directory, and this user may read it.</summary>
    public static void RequireReadableFile(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
            throw new CliException(ExitCodes.Usage, $"{what} is empty; it names a file");
        if (Directory.Exists(path))
            throw new CliException(ExitCodes.Usage, $"{what} {path} is a directory; it names a file");
        if (!File.Exists(path))
            throw new CliException(ExitCodes.NotFound, $"{what} {path} does not exist");
        if (!MayAccess(path, ReadAccess))
            throw new CliException(ExitCodes.Permission, $"{what} {path}: {Environment.UserName} may not read it; run as a user who may (its owner, or root)");
    }

    /// <summary>
    /// A directory: not a file; existing unless <paramref name="mayCreate"/>; searchable and readable by this user.
    /// </summary>
    public static void RequireDirectory(string path, string what, bool mayCreate = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
            throw new CliException(ExitCodes.Usage, $"{what} is empty; it names a directory");
        if (File.Exists(path))
            throw new CliException(ExitCodes.Usage, $"{what} {path} is a file; it names a directory");
        if (!Directory.Exists(path))
        {
            if (mayCreate)
            {
                if (NearestExisting(path) is { } parent && File.Exists(parent))
                    throw new CliException(ExitCodes.Usage, $"{what} {path}: {parent} is a file, not a directory");
                return;
            }

            throw new CliException(ExitCodes.NotFound, $"{what} {path} does not exist (a mistyped path? this command creates nothing)");
        }

        if (!MayAccess(path, ReadAccess | SearchAccess))
            throw new CliException(ExitCodes.Permission, $"{what} {path}: {Environment.UserName} may not read it; run as its owner (sudo -u OWNER survey6 ...)");
    }

    /// <summary>A directory this user may create files in, checked before anything is spent elsewhere.</summary>
    public static void RequireWritableDirectory(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        RequireDirectory(path, what, mayCreate: true);
        var existing = NearestExisting(path) ?? "/";
        if (!Directory.Exists(existing))
            throw new CliException(ExitCodes.Usage, $"{what} {path}: {existing} is a file, not a directory");
        if (!MayAccess(existing, WriteAccess | SearchAccess))
            throw new CliException(ExitCodes.Permission, $"{what} {path}: {Environment.UserName} may not write in {existing}; run as its owner (sudo -u OWNER survey6 ...)");
    }

    /// <summary>Whether this user may list and enter the directory.</summary>
    public static bool MayList(string directory) => MayAccess(directory, ReadAccess | SearchAccess);

    /// <summary>An existing file or directory this user must be able to write.</summary>
    public static void RequireWritable(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Path.Exists(path) && !MayAccess(path, WriteAccess))
            throw new CliException(ExitCodes.Permission, $"{what} {path}: {Environment.UserName} may not write it; run as its owner (sudo -u OWNER survey6 ...)");
    }

    private static string? NearestExisting(string path)
    {
        for (var current = Path.GetFullPath(path); current is not null; current = Path.GetDirectoryName(current))
        {
            if (Path.Exists(current))
                return current;
        }

        return null;
    }

    private static bool MayAccess(string path, int mode) => FileAccessAt(AtCurrentDirectory, path, mode, AtEffectiveAccess) == 0;

    [LibraryImport("libc", EntryPoint = "faccessat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int FileAccessAt(int directoryFd, string path, int mode, int flags);
}

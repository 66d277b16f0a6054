using System.CommandLine;
using System.CommandLine.Invocation;
using System.Net.Sockets;
using System.Text.Json;

namespace Survey6.Cli;

/// <summary>
/// The exit statuses of every <c>survey6</c> command (docs/operations.md, "Exit statuses", lists them per command).
/// Only this class spells the numbers; scripts and systemd units rely on them.
/// </summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The command ran and failed (a damaged capture, a stage that failed, a refusal by the server).</summary>
    public const int Failed = 1;

    /// <summary>The command line or a configuration file is wrong: an unknown command, a malformed option, bad JSON.</summary>
    public const int Usage = 2;

    /// <summary>Something named does not exist: a directory, a file, a probe, a token; <c>probe status</c>: no daemon runs (LSB 3).</summary>
    public const int NotFound = 3;

    /// <summary>The user may not read or write what the command needs, or lacks a capability (capture, a privileged port).</summary>
    public const int Permission = 4;

    /// <summary>Another process holds it: a server or daemon owns the directory, another stage holds the lock, the port is in use.</summary>
    public const int Conflict = 5;

    /// <summary>A resource is not there to use: an address not on this host, a server that does not answer.</summary>
    public const int Unavailable = 6;
}

/// <summary>A mistake the command recognised: one line for the operator and the exit status that classifies it.</summary>
public sealed class CliException : Exception
{
    public CliException(int exitCode, string message)
        : base(message)
    {
        ExitCode = exitCode;
    }

    public CliException()
    {
    }

    public CliException(string message)
        : base(message)
    {
        ExitCode = ExitCodes.Failed;
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
        ExitCode = ExitCodes.Failed;
    }

    public int ExitCode { get; }
}

/// <summary>
/// The one place where a failed command becomes one line on stderr and an exit status. Commands throw (or let
/// through) what went wrong; <see cref="InvokeAsync"/> names the command, says what is wrong in a line and returns
/// the status of <see cref="ExitCodes"/>. The trace goes to stderr only with <c>Logging__LogLevel__Default=Debug</c>.
/// </summary>
public static class CliFailure
{
    /// <summary>The environment setting that turns traces on, the standard .NET logging key.</summary>
    public const string DebugSetting = "Logging__LogLevel__Default";

    /// <summary>True when the operator asked for debug logging: traces are then written too.</summary>
    public static bool Debug =>
        Environment.GetEnvironmentVariable(DebugSetting) is { } level
        && (level.Equals("Debug", StringComparison.OrdinalIgnoreCase) || level.Equals("Trace", StringComparison.OrdinalIgnoreCase));

    /// <summary>Parses nothing itself: runs <paramref name="parse"/>, or explains its usage errors.</summary>
    public static async Task<int> InvokeAsync(ParseResult parse, InvocationConfiguration invocation)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(invocation);
        invocation.EnableDefaultExceptionHandler = false;
        var error = invocation.Error;
        if (parse.Errors.Count > 0)
        {
            error.WriteLine(UsageLine(parse));
            return ExitCodes.Usage;
        }

        return await parse.InvokeAsync(invocation).ConfigureAwait(false);
    }

    /// <summary>
    /// Wraps the action of every command under <paramref name="root"/> so that its failures are reported here,
    /// whoever invokes the tree (the program, or a test in-process): the checks of <see cref="CliPaths.CheckOptions"/>
    /// first, then the command; an exception becomes one line and its exit status.
    /// </summary>
    public static TCommand Attach<TCommand>(TCommand root)
        where TCommand : Command
    {
        ArgumentNullException.ThrowIfNull(root);
        if (root.Action is { } action and not ReportingAction)
            root.Action = new ReportingAction(action);
        foreach (var command in root.Subcommands)
            Attach(command);
        return root;
    }

    private static int Report(ParseResult parse, Exception e)
    {
        var error = parse.InvocationConfiguration.Error;
        var (status, line) = Describe(e);
        error.WriteLine($"{CommandName(parse)}: {line}");
        if (Debug)
            error.WriteLine(e.ToString());
        return status;
    }

    private sealed class ReportingAction(CommandLineAction inner) : AsynchronousCommandLineAction
    {
        public override async Task<int> InvokeAsync(ParseResult parseResult, CancellationToken cancellationToken = default)
        {
            try
            {
                CliPaths.CheckOptions(parseResult);
                return inner switch
                {
                    AsynchronousCommandLineAction asynchronous => await asynchronous.InvokeAsync(parseResult, cancellationToken).ConfigureAwait(false),
                    SynchronousCommandLineAction synchronous => synchronous.Invoke(parseResult),
                    _ => throw new InvalidOperationException($"unexpected action {inner.GetType()}"),
                };
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                return Report(parseResult, e);
            }
        }
    }

    /// <summary>"survey6 server token list": the command as typed, without its options.</summary>
    public static string CommandName(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
            names.Add(result.Command is RootCommand ? "survey6" : result.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>One line for a command line that does not parse: the first error and where to look for help.</summary>
    public static string UsageLine(ParseResult parse)
    {
        var command = CommandName(parse);
        var unmatched = parse.UnmatchedTokens;
        var subcommands = parse.CommandResult.Command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        if (unmatched.Count > 0 && subcommands.Count > 0 && !unmatched[0].StartsWith('-'))
            return $"{command}: no command '{unmatched[0]}'; the commands are {string.Join(", ", subcommands)} (see `{command} --help`)";
        if (subcommands.Count > 0 && parse.CommandResult.Command.Action is null && unmatched.Count == 0)
            return $"{command}: which command? {string.Join(", ", subcommands)} (see `{command} --help`)";
        var first = parse.Errors[0].Message;
        return $"{command}: {first.TrimEnd('.')} (see `{command} --help`)";
    }

    /// <summary>The exit status and the line for an exception a command let through.</summary>
    public static (int Status, string Line) Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var hint = Debug ? "" : $" (for details run again with {DebugSetting}=Debug)";
        switch (exception)
        {
            case CliException cli:
                return (cli.ExitCode, cli.Message);
            case Survey6.Packets.Files.OwnerLockException owned:
                return (ExitCodes.Conflict, owned.Message);
            case AggregateException { InnerExceptions.Count: 1 } aggregate:
                return Describe(aggregate.InnerExceptions[0]);
            case System.Reflection.TargetInvocationException { InnerException: { } inner }:
                return Describe(inner);
        }

        if (Find<SocketException>(exception) is { } socket)
        {
            var what = exception is IOException && exception.Message.Contains("address", StringComparison.OrdinalIgnoreCase)
                ? FirstSentence(exception.Message)
                : FirstSentence(socket.Message);
            return socket.SocketErrorCode switch
            {
                SocketError.AddressAlreadyInUse => (ExitCodes.Conflict, $"{what}: another program listens there; stop it or choose another port"),
                SocketError.AddressNotAvailable => (ExitCodes.Unavailable, $"{what}: this host has no such address; listen on one of its own addresses (or [::])"),
                SocketError.AccessDenied => (ExitCodes.Permission, $"{what}: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023"),
                SocketError.ConnectionRefused => (ExitCodes.Unavailable, $"{what}: nothing listens there; is the server running?"),
                _ => (ExitCodes.Unavailable, what + hint),
            };
        }

        return exception switch
        {
            DirectoryNotFoundException or FileNotFoundException => (ExitCodes.NotFound, exception.Message),
            UnauthorizedAccessException => (ExitCodes.Permission, $"{exception.Message.TrimEnd('.')}; run it as a user who may (the directory's owner)"),
            Microsoft.Extensions.Options.OptionsValidationException => (ExitCodes.Usage, exception.Message),
            InvalidDataException { InnerException: { } inner } => (ExitCodes.Usage, $"{FirstSentence(exception.Message)}: {FirstSentence(Innermost(inner).Message)}"),
            JsonException or FormatException => (ExitCodes.Usage, exception.Message),
            _ when exception.GetType().Name == "SqliteException" => (SqliteStatus(exception), FirstSentence(exception.Message) + hint),
            _ => (ExitCodes.Failed, FirstSentence(exception.Message) + hint),
        };
    }

    private static int SqliteStatus(Exception exception) =>
        exception.Message.Contains("unable to open", StringComparison.OrdinalIgnoreCase)
        || exception.Message.Contains("readonly", StringComparison.OrdinalIgnoreCase)
            ? ExitCodes.Permission
            : exception.Message.Contains("locked", StringComparison.OrdinalIgnoreCase) || exception.Message.Contains("busy", StringComparison.OrdinalIgnoreCase)
                ? ExitCodes.Conflict
                : ExitCodes.Failed;

    private static Exception Innermost(Exception exception)
    {
        while (exception.InnerException is { } inner)
            exception = inner;
        return exception;
    }

    private static T? Find<T>(Exception exception)
        where T : Exception
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is T found)
                return found;
        }

        return null;
    }

    private static string FirstSentence(string message)
    {
        var line = message.Split('\n', 2)[0].Trim();
        return line.EndsWith('.') ? line[..^1] : line;
    }
}

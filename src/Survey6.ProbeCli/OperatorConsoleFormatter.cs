using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Survey6.Cli;

/// <summary>
/// The console log of the services the CLI starts (<c>server run</c>, <c>probe run</c>, <c>aggregate</c>): the
/// message, and of an exception only its messages on the same entry. The stack trace is written only at debug level
/// (<see cref="CliFailure.DebugSetting"/>), so a port in use is one entry, not fifty lines. Under systemd (journald on
/// stderr) each entry is one line with its syslog priority, as the systemd formatter writes it.
/// </summary>
public sealed class OperatorConsoleFormatter : ConsoleFormatter
{
    public const string FormatterName = "survey6";

    private static readonly bool UnderJournal = Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 };

    public OperatorConsoleFormatter()
        : base(FormatterName)
    {
    }

    /// <summary>Makes this the console log of <paramref name="logging"/>.</summary>
    public static void Use(ILoggingBuilder logging)
    {
        ArgumentNullException.ThrowIfNull(logging);
        logging.AddConsole(o => o.FormatterName = FormatterName);
        logging.AddConsoleFormatter<OperatorConsoleFormatter, ConsoleFormatterOptions>();
        logging.Services.Configure<ConsoleLoggerOptions>(o => o.FormatterName = FormatterName);
    }

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
            return;
        var exception = logEntry.Exception is null ? ""
            : CliFailure.Debug ? Environment.NewLine + logEntry.Exception
            : " (" + Messages(logEntry.Exception) + ")";
        if (UnderJournal)
        {
            textWriter.Write($"<{Priority(logEntry.LogLevel)}>{logEntry.Category}[{logEntry.EventId.Id}]: {message?.ReplaceLineEndings(" ")}{exception.ReplaceLineEndings(" ")}");
            textWriter.Write(Environment.NewLine);
            return;
        }

        textWriter.Write($"{Level(logEntry.LogLevel)}: {logEntry.Category}[{logEntry.EventId.Id}]{Environment.NewLine}      {message}{exception}{Environment.NewLine}");
    }

    /// <summary>"IOException: Failed to bind ...; SocketException: Address already in use": every message, no trace.</summary>
    public static string Messages(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var parts = new List<string>();
        for (Exception? e = exception; e is not null; e = e.InnerException)
            parts.Add($"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        return string.Join("; ", parts);
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };

    private static int Priority(LogLevel level) => level switch
    {
        LogLevel.Trace or LogLevel.Debug => 7,
        LogLevel.Information => 6,
        LogLevel.Warning => 4,
        LogLevel.Error => 3,
        _ => 2,
    };
}

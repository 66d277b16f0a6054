using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Survey6.Aggregator.Tests.Support;

/// <summary>Keeps every message logged at <paramref name="minimum"/> (warning unless given) or above, so that a test can show what the operator reads.</summary>
public sealed class CapturedLog(LogLevel minimum = LogLevel.Warning) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _messages = new();

    public IReadOnlyList<string> Messages => [.. _messages];

    public ILogger CreateLogger(string categoryName) => new Logger(_messages, minimum);

    public void Dispose()
    {
    }

    private sealed class Logger(ConcurrentQueue<string> messages, LogLevel minimum) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                messages.Enqueue(formatter(state, exception));
            }
        }
    }
}

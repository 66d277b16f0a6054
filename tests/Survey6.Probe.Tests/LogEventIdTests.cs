using System.Reflection;
using Microsoft.Extensions.Logging;
using Survey6.Probe.Daemon;
using Survey6.Testing;

namespace Survey6.Probe.Tests;

/// <summary>
/// The operator's log shows each line's event id (<c>Category[ID]</c>), and journal filters select by it: the messages of
/// one log class (ProbeLog's numbered by area: 1xx capture, 2xx spool, ...) must never share one.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class LogEventIdTests
{
    [Fact]
    public void Every_log_message_has_an_event_id_of_its_own_in_its_log_class()
    {
        var messages = typeof(ProbeDaemon).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .ToList();
        Assert.True(messages.Count > 50, $"only {messages.Count} log messages found");

        var shared = messages.GroupBy(m => (m.Method.DeclaringType!.Name, m.Attribute!.EventId)).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key.Name} {g.Key.EventId}: {string.Join(", ", g.Select(m => m.Method.Name))}")
            .ToList();
        Assert.True(shared.Count == 0, "event ids used twice:\n" + string.Join('\n', shared));
    }
}

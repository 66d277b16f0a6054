using System.CommandLine;
using Survey6.Cli;

// Services (probe run, server run) close and sync their files on SIGTERM: give them the time a
// systemd stop gives them rather than System.CommandLine's default two seconds.
var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
return await RootCommandFactory.Create().Parse(args).InvokeAsync(invocation).ConfigureAwait(false);

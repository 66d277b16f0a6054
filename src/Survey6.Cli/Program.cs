using System.CommandLine;
using Survey6.Cli;

// Services (probe run, server run) close and sync their files on SIGTERM: give them the time a
// systemd stop gives them rather than System.CommandLine's default two seconds.
var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
// Every failure becomes one line and a documented exit status there (CliFailure, ExitCodes).
return await CliFailure.InvokeAsync(RootCommandFactory.Create().Parse(args), invocation).ConfigureAwait(false);

using System.CommandLine;
using Survey6.Cli;

// The probe host's `survey6`: only `survey6 probe ...` (see the project file for why).
var root = new RootCommand("survey6 (probe): passive IPv6 capture for a survey6 server");
root.Subcommands.Add(ProbeCommands.Create());
CliFailure.Attach(root);
var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
return await CliFailure.InvokeAsync(root.Parse(args), invocation).ConfigureAwait(false);

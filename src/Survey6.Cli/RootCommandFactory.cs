using System.CommandLine;

namespace Survey6.Cli;

/// <summary>Builds the <c>survey6</c> command tree; each area adds its own group.</summary>
public static class RootCommandFactory
{
    public static RootCommand Create()
    {
        var root = new RootCommand("survey6: passive IPv6 traffic collection for security and Internet-measurement research");
        root.Subcommands.Add(PcapCommands.Create());
        root.Subcommands.Add(ServerCommands.Create());
        root.Subcommands.Add(ProbeCommands.Create());
        root.Subcommands.Add(AggregateCommands.Create());
        root.Subcommands.Add(QueryCommand.Create());
        root.Subcommands.Add(Demo.DemoCommand.Create());
        return CliFailure.Attach(root);
    }
}

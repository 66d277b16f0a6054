using System.CommandLine;

namespace Survey6.Cli;

/// <summary>Builds the <c>survey6</c> command tree; each area adds its own group.</summary>
public static partial class RootCommandFactory
{
    public static RootCommand Create()
    {
        var root = new RootCommand("survey6: passive IPv6 traffic collection for security and Internet-measurement research");
        root.Subcommands.Add(PcapCommands.Create());
        root.Subcommands.Add(ServerCommands.Create());
        root.Subcommands.Add(ProbeCommands.Create());
        root.Subcommands.Add(AggregateCommands.Create());
        root.Subcommands.Add(QueryCommand.Create());
        AddLabCommands(root);
        return CliFailure.Attach(root);
    }

    /// <summary>
    /// <c>demo</c>, in the program built from the source tree (Demo/LabCommands.cs). The packaged program is built
    /// with <c>-p:Survey6Lab=false</c>: it carries neither the command nor the lab library, and this call compiles away.
    /// </summary>
    static partial void AddLabCommands(RootCommand root);
}

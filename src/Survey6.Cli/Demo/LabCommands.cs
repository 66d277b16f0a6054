using System.CommandLine;

namespace Survey6.Cli;

/// <summary>The source tree's lab commands; left out of the packaged program (Survey6.Cli.csproj, <c>Survey6Lab</c>).</summary>
public static partial class RootCommandFactory
{
    static partial void AddLabCommands(RootCommand root) => root.Subcommands.Add(Demo.DemoCommand.Create());
}

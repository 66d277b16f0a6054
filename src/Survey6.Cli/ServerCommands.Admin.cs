using System.CommandLine;
using Survey6.Server.Pki;
using Survey6.Server.Storage;
using Survey6.Server.Web;

namespace Survey6.Cli;

public static partial class ServerCommands
{
    /// <summary><c>survey6 server admin set-password</c>: the web UI's admin password, read from standard input.</summary>
    private static Command CreateAdmin(Option<string> dataDir, Option<string> config)
    {
        var group = new Command("admin", "The web UI's admin account");
        var setPassword = new Command("set-password", $"Set the admin password; reads it from standard input (first line, at least {WebAdminStore.MinPasswordLength} characters)");
        setPassword.SetAction(parse =>
        {
            // On a terminal, say what it waits for; from a pipe, read quietly.
            if (!Console.IsInputRedirected)
                parse.InvocationConfiguration.Error.Write($"admin password (at least {WebAdminStore.MinPasswordLength} characters, then Enter): ");
            var password = Console.In.ReadLine()?.TrimEnd('\r');
            if (password is null || password.Length < WebAdminStore.MinPasswordLength)
                return Fail(parse, "admin set-password", $"expected a password of at least {WebAdminStore.MinPasswordLength} characters on standard input");

            return WithState(parse, "admin set-password", () =>
            {
                var database = OpenOrInitialise(parse, dataDir, config);
                var directory = new ServerDataDirectory(LoadOptions(parse, dataDir, config).DataDirectory);
                new WebAdminStore(new SettingsStore(database), TimeProvider.System).SetPassword(password);
                var output = parse.InvocationConfiguration.Output;
                output.WriteLine($"password set for user {WebAdminStore.UserName}; a running server uses it for the next login and has ended every session");
                if (File.Exists(directory.AdminPasswordFile))
                {
                    File.Delete(directory.AdminPasswordFile); // the first start's password, no longer valid
                    output.WriteLine($"removed {directory.AdminPasswordFile}");
                }
                return 0;
            });
        });
        group.Subcommands.Add(setPassword);
        return group;
    }
}

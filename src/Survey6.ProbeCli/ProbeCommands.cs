using System.CommandLine;
using Survey6.Probe.Join;

namespace Survey6.Cli;

/// <summary><c>survey6 probe ...</c>: run on a capture host.</summary>
public static class ProbeCommands
{
    public static Command Create()
    {
        var probe = new Command("probe", "Capture host: join a survey6 server, capture and spool IPv6 traffic");
        probe.Subcommands.Add(CreateJoin());
        probe.Subcommands.Add(CreateLeave());
        probe.Subcommands.Add(ProbeUploadCommand.Create());
        foreach (var command in ProbeDaemonCommands.Create())
            probe.Subcommands.Add(command);
        return probe;
    }

    private static Command CreateJoin()
    {
        var server = new Option<string>("--server") { Description = "Server URL, https://HOST:PORT", Required = true };
        var token = new Option<string>("--token") { Description = "Join token from `survey6 server token create`", Required = true };
        var caHash = new Option<string>("--ca-hash") { Description = "sha256:HEX of the server CA's public key, from the same command", Required = true };
        var stateDir = new Option<string>("--state-dir")
        {
            Description = "Where the probe keeps its key, certificates and probe.json",
            DefaultValueFactory = _ => JoinSettings.DefaultStateDirectory,
        };
        var labels = new Option<string[]>("--label") { Description = "key=value label for this probe (repeatable)" };
        var location = new Option<string>("--location") { Description = "lat,lon[,country[,city]]" };
        var name = new Option<string>("--name") { Description = "A name for this probe, shown by the server (at most 128 characters)" };
        var country = new Option<string>("--country") { Description = "ISO 3166-1 alpha-2 country code, e.g. DE" };
        var city = new Option<string>("--city") { Description = "City the probe is in" };
        var command = new Command("join", "Join a server: check its CA against --ca-hash, get a certificate for a key made here")
        {
            server, token, caHash, stateDir, labels, location, name, country, city,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (!Contracts.ProbeLabels.TryParse(parse.GetValue(labels), out var labelMap, out var labelError))
                return Fail(error, labelError!);
            Contracts.V1.Location? where = null;
            if (parse.GetValue(location) is { } locationText && !CliParsing.TryParseLocation(locationText, out where))
                return Fail(error, $"--location '{locationText}' is not lat,lon[,country[,city]]");
            if (!CliParsing.TryMergePlace(where, parse.GetValue(country), parse.GetValue(city), out where, out var placeError))
                return Fail(error, placeError!);
            var probeName = parse.GetValue(name)?.Trim();
            if (probeName is { Length: > CliParsing.MaxNameLength })
                return Fail(error, $"--name is longer than {CliParsing.MaxNameLength} characters");

            if (!Uri.TryCreate(parse.GetValue(server), UriKind.Absolute, out var serverUrl))
                return Fail(error, $"--server '{parse.GetValue(server)}' is not a URL like https://HOST:PORT");

            var settings = new JoinSettings(serverUrl, parse.GetValue(token)!, parse.GetValue(caHash)!, parse.GetValue(stateDir)!, labelMap, where)
            {
                Name = string.IsNullOrEmpty(probeName) ? null : probeName,
            };
            try
            {
                // Root joining for the service user (`sudo survey6 probe join ...`, as the printed command is often run):
                // key, certificates and probe.json must belong to the state directory's owner, or the service cannot read them.
                DirectoryOwner.Become(settings.StateDirectory, parse);
                // Checked before the token is sent: a state directory that cannot be written must not use up the token.
                CliPaths.RequireWritableDirectory(settings.StateDirectory, "--state-dir");
                var result = await ProbeJoinClient.JoinAsync(settings, cancellationToken).ConfigureAwait(false);
                output.WriteLine($"joined as {result.ProbeId}; certificate valid until {result.CertificateNotAfter:u}; state in {result.StateDirectory}");
                return 0;
            }
            catch (ProbeJoinException e)
            {
                return Fail(error, e.Message, status: ExitCodes.Failed);
            }
        });
        return command;
    }

    private static Command CreateLeave()
    {
        var stateDir = new Option<string>("--state-dir")
        {
            Description = "The joined probe's state directory",
            DefaultValueFactory = _ => JoinSettings.DefaultStateDirectory,
        };
        var config = new Option<string>("--config") { Description = "The daemon's JSON configuration, to find a spool kept outside the state directory" };
        var reason = new Option<string>("--reason") { Description = "Why the probe leaves; kept with its record on the server", DefaultValueFactory = _ => "left by an operator" };
        var command = new Command("leave", "Tell the server this probe leaves, then remove its identity (key, certificates); the spool is kept")
        {
            stateDir, config, reason,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var state = Path.GetFullPath(parse.GetValue(stateDir)!);
            try
            {
                var spool = Survey6.Probe.Daemon.ProbeDaemonHosting.SpoolDirectoryFor(parse.GetValue(config), state);
                var result = await ProbeLeaveClient.LeaveAsync(state, spool, parse.GetValue(reason) ?? "", TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
                output.WriteLine(result.ServerConfirmed
                    ? $"{result.ProbeId} left the server"
                    : $"the server no longer accepts {result.ProbeId} (revoked or already left); removing its identity anyway");
                output.WriteLine($"removed from {state}: {string.Join(", ", result.RemovedFiles)}");
                output.WriteLine(result.SpoolFiles == 0
                    ? $"no capture left in {spool}"
                    : $"{result.SpoolFiles} capture file(s) not uploaded remain in {spool} ({ProbeDaemonCommands.Bytes(result.SpoolBytes)}); they are kept");
                return 0;
            }
            catch (ProbeJoinException e)
            {
                return Fail(error, e.Message, "leave", ExitCodes.Failed);
            }
            catch (InvalidOperationException e)
            {
                return Fail(error, e.Message, "leave", ExitCodes.Failed);
            }
        });
        return command;
    }

    /// <summary>One line on stderr; by default the status of a mistake in the command line.</summary>
    private static int Fail(TextWriter error, string message, string command = "join", int status = ExitCodes.Usage)
    {
        error.WriteLine($"survey6 probe {command}: {message}");
        return status;
    }
}

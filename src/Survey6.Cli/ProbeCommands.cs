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
        var command = new Command("join", "Join a server: check its CA against --ca-hash, get a certificate for a key made here")
        {
            server, token, caHash, stateDir, labels, location,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (!CliParsing.TryParseLabels(parse.GetValue(labels), out var labelMap, out var labelError))
                return Fail(error, labelError!);
            Contracts.V1.Location? where = null;
            if (parse.GetValue(location) is { } locationText && !CliParsing.TryParseLocation(locationText, out where))
                return Fail(error, $"--location '{locationText}' is not lat,lon[,country[,city]]");

            if (!Uri.TryCreate(parse.GetValue(server), UriKind.Absolute, out var serverUrl))
                return Fail(error, $"--server '{parse.GetValue(server)}' is not a URL like https://HOST:PORT");

            var settings = new JoinSettings(serverUrl, parse.GetValue(token)!, parse.GetValue(caHash)!, parse.GetValue(stateDir)!, labelMap, where);
            try
            {
                var result = await ProbeJoinClient.JoinAsync(settings, cancellationToken).ConfigureAwait(false);
                output.WriteLine($"joined as {result.ProbeId}; certificate valid until {result.CertificateNotAfter:u}; state in {result.StateDirectory}");
                return 0;
            }
            catch (ProbeJoinException e)
            {
                return Fail(error, e.Message);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Fail(error, e.Message);
            }
        });
        return command;
    }

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine("survey6 probe join: " + message);
        return 1;
    }
}

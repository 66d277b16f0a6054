using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Survey6.Probe;
using Survey6.Probe.Daemon;
using Survey6.Probe.Join;
using Survey6.Probe.Spool;

namespace Survey6.Cli;

/// <summary>
/// <c>survey6 probe run|suspend|resume|status</c>. The last three talk to a running daemon over its
/// control socket; with no daemon running, suspend and resume set or clear the persistent flag, so
/// the next start honours it, and status describes the spool from the directory.
/// </summary>
public static class ProbeDaemonCommands
{
    /// <summary>status: the daemon is not running (LSB "program is not running").</summary>
    public const int ExitNotRunning = ExitCodes.NotFound;

    private static readonly TimeSpan SocketTimeout = TimeSpan.FromSeconds(70);
    private static readonly JsonSerializerOptions Indented = new(ProbeDaemonProtocol.Json) { WriteIndented = true };

    public static IEnumerable<Command> Create()
    {
        yield return CreateRun();
        yield return CreateSuspend();
        yield return CreateResume();
        yield return CreateStatus();
    }

    private static Option<string> ConfigOption() => new("--config") { Description = "JSON configuration file (section Probe)" };

    private static Option<string> StateDirOption() => new("--state-dir")
    {
        Description = $"Probe state directory (default: Probe:StateDirectory from the configuration, else {JoinSettings.DefaultStateDirectory})",
    };

    private static Command CreateRun()
    {
        var config = ConfigOption();
        var stateDir = StateDirOption();
        var command = new Command("run", "Capture and spool until stopped (systemd Type=notify service)") { config, stateDir };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            if (parse.GetValue(stateDir) is { } dir)
                overrides["Probe:StateDirectory"] = Path.GetFullPath(dir);
            if (DirectoryOwner.DaemonRefusal(Paths(parse, config, stateDir).Root, parse) is { } refusal)
                return Fail(parse, "run", refusal);
            if (!CaptureRights.Held())
                throw new CliException(ExitCodes.Permission, CaptureRights.Refusal(DirectoryOwner.CommandLine(parse)));
            // What fails at start (the lock, the configuration) reaches CliFailure: one line, its exit status.
            var builder = ProbeDaemonHosting.CreateBuilder(parse.GetValue(config), overrides);
            OperatorConsoleFormatter.Use(builder.Logging);
            using var host = builder.Build();
            var daemon = host.Services.GetRequiredService<ProbeDaemon>(); // RunAsync disposes the services
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
            return daemon.Failure is { } failure ? Fail(parse, "run", failure) : 0;
        });
        return command;
    }

    private static Command CreateSuspend()
    {
        var config = ConfigOption();
        var stateDir = StateDirOption();
        var reason = new Option<string>("--reason") { Description = "Why (shown in status and logs)", DefaultValueFactory = _ => "suspended by an operator" };
        var json = new Option<bool>("--json") { Description = "Print the daemon's status as JSON" };
        var command = new Command("suspend", "Stop capturing and release the interfaces; persists across restarts") { config, stateDir, reason, json };
        command.SetAction((parse, cancellationToken) => SwitchAsync(parse, "suspend", parse.GetValue(reason), Paths(parse, config, stateDir), parse.GetValue(json), cancellationToken));
        return command;
    }

    private static Command CreateResume()
    {
        var config = ConfigOption();
        var stateDir = StateDirOption();
        var json = new Option<bool>("--json") { Description = "Print the daemon's status as JSON" };
        var command = new Command("resume", "Capture again after a suspend") { config, stateDir, json };
        command.SetAction((parse, cancellationToken) => SwitchAsync(parse, "resume", null, Paths(parse, config, stateDir), parse.GetValue(json), cancellationToken));
        return command;
    }

    private static Command CreateStatus()
    {
        var config = ConfigOption();
        var stateDir = StateDirOption();
        var json = new Option<bool>("--json") { Description = "JSON instead of text" };
        var command = new Command("status", $"State, capture rate, drops by stage, spool; exits {ExitNotRunning} when the daemon is not running") { config, stateDir, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var paths = Paths(parse, config, stateDir);
            var output = parse.InvocationConfiguration.Output;
            CliPaths.RequireDirectory(paths.Root, "the state directory");
            var reply = await ProbeDaemonClient.SendAsync(paths.SocketPath, "status", null, SocketTimeout, cancellationToken).ConfigureAwait(false);
            if (reply is null)
            {
                WriteOffline(output, paths, ProbeDaemonHosting.SpoolDirectoryFor(parse.GetValue(config), paths.Root), parse.GetValue(json));
                return ExitNotRunning;
            }

            if (!reply.Ok || reply.Status is null)
                return Fail(parse, "status", reply.Error ?? "the daemon refused the request");
            WriteStatus(output, reply, parse.GetValue(json));
            return 0;
        });
        return command;
    }

    private static async Task<int> SwitchAsync(ParseResult parse, string command, string? reason, ProbeDaemonPaths paths, bool json, CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        ProbeDaemonReply? reply;
        try
        {
            // Without a daemon the flag is written here: as the state directory's owner, so the daemon can read it.
            DirectoryOwner.Become(paths.Root, parse);
            reply = await ProbeDaemonClient.SendAsync(paths.SocketPath, command, reason, SocketTimeout, cancellationToken).ConfigureAwait(false);
            if (reply is null)
            {
                // No daemon: set the flag it reads at start.
                if (command == "suspend")
                    paths.WriteSuspended(new SuspendedFlag(reason ?? "", DateTimeOffset.UtcNow));
                else
                    paths.ClearSuspended();
                output.WriteLine(command == "suspend"
                    ? $"no probe daemon is running on {paths.Root}; it will start suspended ({paths.SuspendedPath})"
                    : $"no probe daemon is running on {paths.Root}; it will capture when started");
                return 0;
            }
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            return Fail(parse, command, e.Message);
        }

        if (!reply.Ok || reply.Status is null)
            return Fail(parse, command, reply.Error ?? "the daemon refused the request");
        if (json)
        {
            WriteStatus(output, reply, json: true);
        }
        else
        {
            var status = reply.Status;
            output.WriteLine($"{status.State}{(status.StateReason is { } why ? ": " + why : "")}");
        }

        return 0;
    }

    private static ProbeDaemonPaths Paths(ParseResult parse, Option<string> config, Option<string> stateDir)
    {
        if (parse.GetValue(stateDir) is { } dir)
            return new ProbeDaemonPaths(dir);
        var configuration = ProbeDaemonHosting.Configuration(parse.GetValue(config), null).Build();
        var configured = configuration.GetSection(ProbeOptions.SectionName).Get<ProbeOptions>()?.StateDirectory;
        return new ProbeDaemonPaths(string.IsNullOrWhiteSpace(configured) ? JoinSettings.DefaultStateDirectory : configured);
    }

    private static void WriteStatus(TextWriter output, ProbeDaemonReply reply, bool json)
    {
        var s = reply.Status!;
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(s, Indented));
            return;
        }

        var c = s.Capture;
        var p = s.Spool;
        output.WriteLine($"probe:      {s.ProbeId}{(s.Joined ? "" : " (not joined)")}, survey6 {s.Version}");
        output.WriteLine($"state:      {s.State}{(s.StateReason is { } why ? " (" + why + ")" : "")} since {s.StateSince:u}");
        output.WriteLine($"capture:    {string.Join(", ", s.Interfaces)}; filter '{s.Filter}'; snaplen {s.SnapLength}");
        if (s.OwnTraffic is { } own)
        {
            var server = Invariant($"{own.Host} port {own.Port}");
            output.WriteLine(own.LeftOut
                ? $"own:        traffic with the C&C {server} left out ({(own.Addresses.Count > 0 ? string.Join(", ", own.Addresses) : "not resolved yet")}){(own.Problem is { } problem ? "; last resolution failed: " + problem : "")}"
                : $"own:        traffic with the C&C {server} is captured (Probe:Capture:ExcludeOwnTraffic is false)");
        }

        output.WriteLine(Invariant($"rate:       {c.FramesPerSecond:0.#} frames/s, {Bytes((long)c.BytesPerSecond)}/s; queue {c.QueueDepth}"));
        output.WriteLine(Invariant($"frames:     {c.Captured} captured, {c.Written} written, {c.PcapReceived} seen by the kernel filter"));
        output.WriteLine(Invariant($"drops:      kernel {c.KernelDropped}, interface {c.InterfaceDropped}, queue {c.QueueDropped}, disk {c.DiskDropped}"));
        output.WriteLine(Invariant($"spool:      {p.Files} files, {Bytes(p.Bytes)}{(p.Oldest is { } oldest ? $", oldest {oldest:u} ({Age(p.OldestAgeSeconds ?? 0)} ago)" : "")} in {p.Directory}"));
        if (p.CurrentFile is not null)
            output.WriteLine(Invariant($"writing:    {p.CurrentFile} ({Bytes(p.CurrentFileBytes)}, {p.CurrentFileFrames} frames)"));
        output.WriteLine(Invariant($"disk:       {Bytes(p.FreeDiskBytes)} free; policy {p.Policy} (max {Bytes(p.MaxSpoolBytes)}, keep {Bytes(p.MinFreeDiskBytes)} free); guard {p.Guard}; evicted {p.EvictedFiles} files, {Bytes(p.EvictedBytes)}"));
        if (s.Upload is { } u)
        {
            output.WriteLine(Invariant($"upload:     {u.FilesUploaded} files, {Bytes(u.BytesUploaded)}; {u.Failures} failed attempts{(u.LastSuccess is { } last ? $"; last success {last:u}" : "")}"));
            if (u.LastError is { } lastError)
                output.WriteLine(Invariant($"last error: {u.LastErrorAt:u}: {lastError}"));
        }
        if (s.Policy is { } policy)
        {
            var from = policy.AppliedAt is { } at ? Invariant($"applied {at:u}{(policy.Proven ? "" : ", not proven healthy yet")}") : "from the join";
            output.WriteLine(Invariant($"policy:     version {policy.Version} ({from}); rotate at {Bytes(policy.RotateSizeBytes)} or {Age(policy.RotateAgeSeconds)}; upload cap {(policy.UploadMaxBytesPerSecond > 0 ? Bytes(policy.UploadMaxBytesPerSecond) + "/s" : "none")}"));
            if (policy.Fallback is { } fallback)
                output.WriteLine(Invariant($"fallback:   {fallback.At:u}: {fallback.Reason}"));
        }
    }

    /// <summary>Status without a daemon: the flag and what the spool directory holds (read only: no repair here).</summary>
    private static void WriteOffline(TextWriter output, ProbeDaemonPaths paths, string spool, bool json)
    {
        var flag = paths.ReadSuspended();
        var files = Directory.Exists(spool)
            ? Directory.EnumerateFiles(spool, "*" + SpoolFileName.CaptureExtension).Select(f => new FileInfo(f)).ToList()
            : [];
        var partials = Directory.Exists(spool) ? Directory.EnumerateFiles(spool, "*" + SpoolFileName.PartialSuffix).Count() : 0;
        var bytes = files.Sum(f => f.Length);
        DateTimeOffset? oldest = null;
        foreach (var f in files)
        {
            if (SpoolFileName.TryParse(f.Name, out var start, out _) && (oldest is null || start < oldest))
                oldest = start;
        }

        if (json)
        {
            var node = new JsonObject
            {
                ["state"] = "not running",
                ["suspended"] = flag is not null,
                ["suspended_reason"] = flag?.Reason,
                ["spool"] = new JsonObject
                {
                    ["directory"] = spool,
                    ["files"] = files.Count,
                    ["bytes"] = bytes,
                    ["oldest"] = oldest?.ToString("o", CultureInfo.InvariantCulture),
                    ["partial_files"] = partials,
                },
            };
            output.WriteLine(node.ToJsonString(Indented));
            return;
        }

        output.WriteLine($"state:      not running ({paths.SocketPath} does not answer){(flag is not null ? "; suspended: " + flag.Reason : "")}");
        output.WriteLine(Invariant($"spool:      {files.Count} files, {Bytes(bytes)}{(oldest is { } o ? $", oldest {o:u}" : "")}{(partials > 0 ? $"; {partials} left open (repaired at start)" : "")} in {spool}"));
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    internal static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? Invariant($"{bytes} B") : Invariant($"{value:0.#} {units[unit]}");
    }

    private static string Age(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return t.TotalDays >= 1 ? Invariant($"{(int)t.TotalDays}d {t.Hours}h")
            : t.TotalHours >= 1 ? Invariant($"{(int)t.TotalHours}h {t.Minutes}m")
            : t.TotalMinutes >= 1 ? Invariant($"{(int)t.TotalMinutes}m {t.Seconds}s")
            : Invariant($"{t.Seconds}s");
    }

    private static int Fail(ParseResult parse, string command, string message)
    {
        parse.InvocationConfiguration.Error.WriteLine($"survey6 probe {command}: {message}");
        return ExitCodes.Failed;
    }
}
